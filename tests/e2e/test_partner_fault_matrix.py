"""The partner fault matrix: (429 storm, 503 outage, quota, hang, mid-stream drop, E1001) × (ChatOpenAI,
ChatAnthropic, init_chat_model("openai:...")) × every call shape, over real HTTP to one emulator per module.

Each case puts the primary in an outage of one fault (every request to it meets the fault; the emulator is reset
between cases), wraps the partner model built with its defaults (its SDK would retry twice by itself), with a
fallback in the other wire format, makes one call, and checks:

- requests per target at the emulator: one per attempt of ours (``max_retries=1``: a retryable fault costs the
  primary 2 requests per input, 4 for a batch of two), none of the SDK's;
- the outcome's code: the code the primary failed with (the fallback event's), or the error's when nothing answers;
- the answering target: a retryable or fallbackable fault is answered by the fallback; an E1001 is not (it
  fails on the primary, the fallback sees nothing); a stream that breaks after its first chunk surfaces the
  error with the text already sent, with no retry and no fallback;
- no permit left: ``current_inflight == 0`` on every target.

A second, smaller table runs without a fallback: the error's code, and the same request counts.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain.chat_models import init_chat_model
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from matrix_helpers import Outcome, acall, adrain, agen, call, drain, text_of_message
from pydantic import BaseModel

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    ResilienceError,
    ResilienceEvent,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
    StandardErrorCode,
)
from langchain_ailib_resilience.testing import Fault, ProviderEmulator

C = StandardErrorCode
RETRIES = 1
ATTEMPT_TIMEOUT = 0.25  # only for hang cases: short, and still far above an answer from the emulator
HANG = 1.0  # the emulator holds a hung request this long, then drops it (a different code: E3001, not E3003)
TEXT = "Hello from the provider emulator."
PARTIAL = "Hello from "  # what a stream dropped after two chunks has sent

FAULTS: dict[str, Fault] = {
    "429_storm": Fault.rate_limit(0.01),
    "503_outage": Fault.server_error(503),
    "quota": Fault.quota(),
    "hang": Fault.hang(HANG),
    "mid_stream_drop": Fault.stream_drop(2),
    "E1001": Fault.http(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
}
CODE: dict[str, StandardErrorCode] = {
    "429_storm": C.RATE_LIMITED,
    "503_outage": C.OVERLOADED,
    "quota": C.QUOTA_EXHAUSTED,
    "hang": C.TIMEOUT,
    "mid_stream_drop": C.SERVER_ERROR,  # a plain request gets half its body, then the drop
    "E1001": C.INVALID_REQUEST,
}

# partner -> (primary, fallback), each built with its package's defaults; the fallback speaks the other format.
PRIMARY_MODEL = {"ChatOpenAI": "gpt-primary", "ChatAnthropic": "claude-primary", "init_chat_model": "gpt-init"}
BACKUP_MODEL = {"ChatOpenAI": "claude-backup", "ChatAnthropic": "gpt-backup", "init_chat_model": "claude-backup"}


def _openai(emu: ProviderEmulator, name: str) -> BaseChatModel:
    return ChatOpenAI(model=name, base_url=emu.openai_base, api_key="test-key")


def _anthropic(emu: ProviderEmulator, name: str) -> BaseChatModel:
    return ChatAnthropic(model=name, base_url=emu.base_url, api_key="test-key")  # type: ignore[call-arg]


def primary(partner: str, emu: ProviderEmulator) -> BaseChatModel:
    name = PRIMARY_MODEL[partner]
    if partner == "ChatOpenAI":
        return _openai(emu, name)
    if partner == "ChatAnthropic":
        return _anthropic(emu, name)
    return init_chat_model(f"openai:{name}", base_url=emu.openai_base, api_key="test-key")


def backup(partner: str, emu: ProviderEmulator) -> BaseChatModel:
    name = BACKUP_MODEL[partner]
    return _anthropic(emu, name) if name.startswith("claude") else _openai(emu, name)


class Answer(BaseModel):
    city: str
    temperature: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


BATCH = 2
STREAMING = frozenset({"stream", "astream", "astream_events"})
BATCHES = frozenset({"batch", "abatch"})
SHAPES = ("invoke", "ainvoke", "batch", "abatch", "stream", "astream", "astream_events", "bind_tools", "structured")
# What a successful answer looks like per shape (the fallback's: the primary never answers here).
ANSWER = {shape: TEXT for shape in SHAPES} | {
    "bind_tools": "get_weather({'city': 'example'})",
    "structured": repr(Answer(city="example", temperature=1)),
}


def _tool_calls(message: Any) -> str:
    return ";".join(f"{c['name']}({c['args']})" for c in message.tool_calls)


def run(model: ResilientChatModel, shape: str) -> list[Outcome]:
    """One call of ``shape``; async shapes in a fresh ``asyncio.run``, as scripts and notebooks do."""
    if shape == "invoke":
        return [call(lambda: text_of_message(model.invoke("hi")))]
    if shape == "ainvoke":
        return [asyncio.run(acall(lambda: model.ainvoke("hi"), text_of_message))]
    if shape in BATCHES:
        if shape == "batch":
            results = model.batch(["hi"] * BATCH, return_exceptions=True)
        else:
            results = asyncio.run(model.abatch(["hi"] * BATCH, return_exceptions=True))
        return [Outcome(error=r) if isinstance(r, BaseException) else Outcome(text_of_message(r)) for r in results]
    if shape == "stream":
        return [drain(lambda: model.stream("hi"), text_of_message)]
    if shape == "astream":
        return [asyncio.run(adrain(lambda: agen(model.astream("hi")), text_of_message))]
    if shape == "astream_events":

        async def events() -> Any:
            async for event in model.astream_events("hi", version="v2"):
                if event["event"].endswith("_stream") and not event["parent_ids"]:  # the call's own, not an attempt's
                    yield event["data"]["chunk"]

        return [asyncio.run(adrain(lambda: agen(events()), text_of_message))]
    if shape == "bind_tools":
        bound = model.bind_tools([get_weather])
        return [call(lambda: _tool_calls(bound.invoke("hi")))]
    structured = model.with_structured_output(Answer)
    return [call(lambda: repr(structured.invoke("hi")))]


@dataclass(frozen=True)
class Expected:
    answered: bool  # by the fallback (or, without one, not at all)
    code: StandardErrorCode
    primary: int  # requests per input
    fallback: int
    partial: str = ""
    mid_stream: bool = False


def expected(fault: str, shape: str, *, with_fallback: bool) -> Expected:
    code = CODE[fault]
    if fault == "mid_stream_drop" and shape in STREAMING:
        return Expected(False, code, primary=1, fallback=0, partial=PARTIAL, mid_stream=True)
    attempts = 1 + RETRIES if code.retryable else 1
    if code.fallbackable and with_fallback:
        return Expected(True, code, primary=attempts, fallback=1)
    return Expected(False, code, primary=attempts, fallback=0)


# --- one emulator for the module, reset between cases ------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emu:
        for partner in PRIMARY_MODEL:  # first calls import and build what later calls reuse: not in a timed case
            for model in (primary(partner, emu), backup(partner, emu)):
                wrapped = ResilientChatModel(model=model)
                wrapped.invoke("warm up")
                list(wrapped.stream("warm up"))
                wrapped.with_structured_output(Answer).invoke("warm up")
                asyncio.run(wrapped.ainvoke("warm up"))
        yield emu


@pytest.fixture
def emu(emulator: ProviderEmulator) -> Iterator[ProviderEmulator]:
    emulator.reset()
    yield emulator
    emulator.reset()


def config(fault: str) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=RETRIES, initial_delay=0.01, max_delay=0.02, jitter="none", budget=None),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=50),  # not under test: never opens mid-case
        attempt_timeout=ATTEMPT_TIMEOUT if fault == "hang" else None,
        total_timeout=10.0,  # a safety net: no case may hang the suite
    )


def check(
    emu: ProviderEmulator,
    partner: str,
    fault: str,
    shape: str,
    *,
    with_fallback: bool,
) -> None:
    emu.set_default(PRIMARY_MODEL[partner], FAULTS[fault])
    fallbacks = [backup(partner, emu)] if with_fallback else []
    model = ResilientChatModel(config(fault), model=primary(partner, emu), fallbacks=fallbacks)
    events: list[ResilienceEvent] = []
    model.executor.add_listener(events.append)
    if fault == "hang":
        gc.disable()  # a full collection can pause the process for longer than the fallback's attempt timeout
    try:
        outcomes = run(model, shape)
    finally:
        gc.enable()
    want = expected(fault, shape, with_fallback=with_fallback)
    inputs = len(outcomes)

    for outcome in outcomes:
        if want.answered:
            assert outcome.error is None, f"expected the fallback's answer, got {outcome.error!r}"
            assert outcome.text == ANSWER[shape]
        else:
            assert isinstance(outcome.error, ResilienceError), f"expected {want.code}, got {outcome!r}"
            assert outcome.error.code is want.code, repr(outcome.error)
            assert outcome.text == want.partial

    # One request per attempt of ours, per target: the SDK's own retries are off.
    requests = (emu.count(PRIMARY_MODEL[partner]), emu.count(BACKUP_MODEL[partner]))
    assert requests == (want.primary * inputs, want.fallback * inputs)

    # The outcome's code, as the executor saw it on the primary.
    fell_back = [e for e in events if e.kind == "fallback"]
    retried = [e for e in events if e.kind == "retry"]
    assert [e.code for e in retried] == [want.code] * ((want.primary - 1) * inputs)
    if want.answered:
        assert [e.code for e in fell_back] == [want.code] * inputs
        assert all(BACKUP_MODEL[partner] in e.detail["next_target"] for e in fell_back)
    else:
        assert not fell_back

    # No permit left on any target.
    held = {name: t.current_inflight for name, t in model.signals_snapshot().targets.items()}
    assert set(held.values()) == {0}, held


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("partner", list(PRIMARY_MODEL))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_partner_fault_matrix(emu: ProviderEmulator, fault: str, partner: str, shape: str) -> None:
    check(emu, partner, fault, shape, with_fallback=True)


@pytest.mark.parametrize("shape", ["invoke", "astream"])
@pytest.mark.parametrize("partner", list(PRIMARY_MODEL))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_partner_fault_matrix_without_a_fallback(emu: ProviderEmulator, fault: str, partner: str, shape: str) -> None:
    check(emu, partner, fault, shape, with_fallback=False)


def test_expectations_cover_every_fault() -> None:
    assert set(CODE) == set(FAULTS)
    assert expected("quota", "invoke", with_fallback=True).answered
    assert not expected("E1001", "invoke", with_fallback=True).answered
