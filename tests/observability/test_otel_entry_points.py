"""The same spans and metrics from every entry point, for every fault, over HTTP to the provider emulator.

Entry points: the bare executor around ``litellm.acompletion``, ``ResilientChatModel`` (invoke, ainvoke, stream,
astream) around a real ``ChatOpenAI``, ``ResilienceMiddleware`` in ``create_agent``, ``FallbackChain``'s
Runnable, ``resilient_completion`` / ``resilient_acompletion`` (calls and streams) and ``litellm.acompletion``
gated by ``ResilienceCallback``. Faults: a 429 storm (429 with Retry-After, then an answer), an outage (503 until
the circuit opens), a spent quota, and a stream that drops after its first chunks. Waits run on a fake clock.

Every entry point with retries and fallbacks gives the same attempts (a ``chat {model}`` span each, under one
``resilience.call``) and the same counts; the callback, which neither retries nor falls back, gives one
attempt whose error is the fault's code. No API key appears in any span or metric.
"""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import pytest
from langchain_openai import ChatOpenAI
from opentelemetry.trace import StatusCode
from otel_helpers import OTel

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    FakeClock,
    FallbackChain,
    ResilienceCallback,
    ResilienceMiddleware,
    ResilientChatModel,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    resilient_acompletion,
    resilient_completion,
)
from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success

PRIMARY, BACKUP = "gpt-x", "gpt-y"
SECRET = "sk-test-SECRETKEY0123456789"
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=2, initial_delay=0.5, max_delay=2.0, jitter="none", budget=None),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=60.0),
)
STREAMS = {"lc_stream", "lc_astream", "rc_astream", "cb_astream"}
MODES = [
    "executor",
    "lc_invoke",
    "lc_ainvoke",
    "lc_stream",
    "lc_astream",
    "middleware",
    "fallback_chain",
    "rc_sync",
    "rc_async",
    "rc_astream",
    "cb_async",
    "cb_astream",
]
FAULTS = ["storm", "outage", "quota", "mid_stream"]


@pytest.fixture(autouse=True)
def _no_leaked_callbacks() -> Any:
    litellm.logging_callback_manager._reset_all_callbacks()
    yield
    litellm.logging_callback_manager._reset_all_callbacks()


def chat(emu: ProviderEmulator, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=emu.openai_base, api_key=SECRET)  # type: ignore[arg-type]


def litellm_kwargs(emu: ProviderEmulator, model: str) -> dict[str, Any]:
    return {"model": f"openai/{model}", "api_base": emu.openai_base, "api_key": SECRET}


def target(emu: ProviderEmulator, model: str) -> str:
    return f"openai/{model}@{emu.openai_base}"


def script(emu: ProviderEmulator, fault: str) -> None:
    emu.set_default(BACKUP, Success("from the backup"))
    if fault == "storm":
        emu.script(PRIMARY, [Fault.rate_limit(retry_after=1.0), Success("from the primary")])
    elif fault == "outage":
        emu.set_default(PRIMARY, Fault.server_error(503))
    elif fault == "quota":
        emu.script(PRIMARY, [Fault.quota()])
    else:
        emu.script(PRIMARY, [Fault.stream_drop(after_chunks=2)])


async def drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def call(mode: str, emu: ProviderEmulator, clock: FakeClock) -> None:
    """One call through ``mode``; its error (if any) is swallowed: the spans and metrics are what is checked."""
    kwargs = {"messages": MESSAGES, "config": CONFIG, "clock": clock}
    try:
        if mode == "executor":
            executor = ResilientExecutor(CONFIG, clock=clock)

            def attempt(model: str) -> Any:
                return lambda: litellm.acompletion(messages=MESSAGES, max_retries=0, **litellm_kwargs(emu, model))

            await executor.execute_chain(
                [(target(emu, PRIMARY), attempt(PRIMARY)), (target(emu, BACKUP), attempt(BACKUP))]
            )
        elif mode.startswith("lc_"):
            model = ResilientChatModel(CONFIG, model=chat(emu, PRIMARY), fallbacks=[chat(emu, BACKUP)], clock=clock)
            if mode == "lc_invoke":
                await asyncio.to_thread(model.invoke, "hi")
            elif mode == "lc_ainvoke":
                await model.ainvoke("hi")
            elif mode == "lc_stream":
                await asyncio.to_thread(lambda: list(model.stream("hi")))
            else:
                await drain(model.astream("hi"))
        elif mode == "middleware":
            from langchain.agents import create_agent

            middleware = ResilienceMiddleware(CONFIG, fallbacks=[chat(emu, BACKUP)], clock=clock)
            agent = create_agent(chat(emu, PRIMARY), middleware=[middleware])
            await asyncio.to_thread(agent.invoke, {"messages": [("user", "hi")]})
        elif mode == "fallback_chain":
            runnable = FallbackChain([chat(emu, PRIMARY), chat(emu, BACKUP)], config=CONFIG, clock=clock).as_runnable()
            await runnable.ainvoke("hi")
        elif mode.startswith("rc_"):
            kwargs.update(litellm_kwargs(emu, PRIMARY), fallbacks=[litellm_kwargs(emu, BACKUP)])
            if mode == "rc_sync":
                await asyncio.to_thread(lambda: resilient_completion(**kwargs))
            elif mode == "rc_async":
                await resilient_acompletion(**kwargs)
            else:
                await drain(await resilient_acompletion(stream=True, **kwargs))
        else:
            ResilienceCallback(CONFIG, clock=clock).register()
            request = {"messages": MESSAGES, "max_retries": 0, **litellm_kwargs(emu, PRIMARY)}
            if mode == "cb_async":
                await litellm.acompletion(**request)
            else:
                await drain(await litellm.acompletion(stream=True, **request))
    except Exception:  # noqa: S110 - the outcome is checked through the telemetry
        pass


def expected(mode: str, fault: str) -> list[tuple[str, str | None]]:
    """The attempts that reach a provider: (model, error.type or None), in order."""
    if mode.startswith("cb_"):  # the gate neither retries nor falls back: one attempt, the fault's code
        code = {"storm": "rate_limited", "outage": "overloaded", "quota": "quota_exhausted"}.get(fault)
        return [(PRIMARY, code)] if fault != "mid_stream" else [(PRIMARY, "server_error")]
    if fault == "storm":
        return [(PRIMARY, "rate_limited"), (PRIMARY, None)]
    if fault == "outage":  # the second failure opens the circuit; the third attempt is refused; the backup answers
        return [(PRIMARY, "overloaded"), (PRIMARY, "overloaded"), (BACKUP, None)]
    if fault == "quota":
        return [(PRIMARY, "quota_exhausted"), (BACKUP, None)]
    return [(PRIMARY, "server_error")]


def _model(span: Any) -> str:
    return str(span.attributes["gen_ai.request.model"]).rsplit("/", 1)[-1]


def _cases() -> list[Any]:
    return [
        pytest.param(mode, fault, id=f"{mode}-{fault}")
        for mode in MODES
        for fault in FAULTS
        if fault != "mid_stream" or mode in STREAMS
    ]


@pytest.mark.parametrize(("mode", "fault"), _cases())
async def test_every_entry_point_reports_the_same_attempts(
    otel: OTel, provider_emulator: ProviderEmulator, clock: FakeClock, mode: str, fault: str
) -> None:
    script(provider_emulator, fault)
    await call(mode, provider_emulator, clock)
    await asyncio.sleep(0)  # LiteLLM's success log events run as tasks

    want = expected(mode, fault)
    attempts = otel.chat_spans()
    assert [(_model(s), s.attributes.get("error.type")) for s in attempts] == want
    assert [s.name for s in attempts] == [f"chat {model}" for model, _ in want]
    for span in attempts:
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == provider_emulator.port
    numbers = {}
    for span in attempts:
        numbers.setdefault(_model(span), []).append(span.attributes["resilience.attempt"])
    assert all(n == list(range(1, len(n) + 1)) for n in numbers.values())

    (call_span,) = otel.spans("resilience.call")
    assert all(s.parent is not None and s.parent.span_id == call_span.context.span_id for s in attempts)
    answered = want[-1][1] is None
    assert (call_span.status.status_code is StatusCode.ERROR) is not answered
    if fault == "mid_stream":
        assert attempts[-1].attributes["resilience.mid_stream"] is True

    errors = [code for _, code in want if code is not None]
    assert otel.total("resilience.attempts", resilience__outcome="error") == len(errors)
    assert otel.total("resilience.attempts", resilience__outcome="success") == (1 if answered else 0)
    retried = 0 if mode.startswith("cb_") else {"storm": 1, "outage": 2}.get(fault, 0)
    assert otel.total("resilience.retries") == retried
    fell_back = 1 if fault in ("outage", "quota") and not mode.startswith("cb_") else 0
    assert otel.total("resilience.fallbacks") == fell_back
    rejected = 1 if fault == "outage" and not mode.startswith("cb_") else 0
    assert otel.total("resilience.rejections", resilience__rejection__reason="circuit_open") == rejected
    assert otel.total("resilience.attempts", resilience__outcome="rejected") == rejected
    if fault == "outage" and not mode.startswith("cb_"):
        primary = str(attempts[0].attributes["resilience.target"])
        assert otel.gauge("resilience.circuit.state", primary) == 2
    for target in {str(s.attributes["resilience.target"]) for s in attempts}:
        assert otel.gauge("resilience.inflight", target) == 0

    for span in otel.spans():
        texts = [str(v) for v in span.attributes.values()] + [span.status.description or ""]
        texts += [str(v) for event in span.events for v in event.attributes.values()]
        assert not any("SECRETKEY" in text for text in texts), span.name
    data = otel.reader.get_metrics_data()
    assert data is not None and "SECRETKEY" not in data.to_json()
