"""``ResilienceMiddleware`` in ``langchain.agents.create_agent``, with real ``ChatOpenAI``/``ChatAnthropic``.

Every test talks HTTP to the provider emulator on 127.0.0.1: the emulator counts the requests each model
received, which is what "one request per attempt" and "the dead primary gets bounded requests" are about.
Waits (backoff, Retry-After) run on a fake clock, so nothing sleeps for real.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    ModelCallLimitMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
    ToolRetryMiddleware,
)
from langchain.agents.structured_output import ProviderStrategy, StructuredOutputValidationError, ToolStrategy
from langchain_anthropic import ChatAnthropic
from langchain_core import exceptions as lc
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    FakeClock,
    InvalidRequestError,
    QuotaExhaustedError,
    ResilienceEvent,
    ResilienceMiddleware,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
    StandardErrorCode,
)
from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success, ToolCall

CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=2, initial_delay=0.5, budget=None),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=60.0),
)


class Weather(BaseModel):
    city: str
    forecast: str


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny in {city}"


def tool_names(body: Any) -> list[str]:
    """The tools a request offered, OpenAI's format or Anthropic's."""
    return [t.get("function", t).get("name") for t in body.get("tools", [])]


def openai(emu: ProviderEmulator, model: str = "gpt-x", **kwargs: Any) -> ChatOpenAI:
    # Built with langchain-openai's defaults (max_retries=None: the SDK retries twice): the middleware turns the
    # SDK's own retries off.
    return ChatOpenAI(model=model, base_url=emu.openai_base, api_key="sk-test", **kwargs)  # type: ignore[arg-type]


def anthropic(emu: ProviderEmulator, model: str = "claude-x") -> ChatAnthropic:
    return ChatAnthropic(model=model, base_url=emu.anthropic_base, api_key="sk-ant-test", max_retries=2)  # type: ignore[call-arg]


def middleware(clock: FakeClock, *fallbacks: Any, events: list[ResilienceEvent] | None = None) -> ResilienceMiddleware:
    mw = ResilienceMiddleware(CONFIG, fallbacks=list(fallbacks), clock=clock)
    if events is not None:
        mw.executor.add_listener(events.append)
    return mw


def ask(agent: Any, *texts: str, use_async: bool) -> Any:
    """One agent run per text (each async one in its own ``asyncio.run``, as scripts and notebooks do); the last
    result, or all of them."""
    payloads = [{"messages": [("user", text)]} for text in texts]
    if use_async:
        results = [asyncio.run(agent.ainvoke(payload)) for payload in payloads]
    else:
        results = [agent.invoke(payload) for payload in payloads]
    return results[0] if len(results) == 1 else results


# --- a tool loop through a 429 storm and an outage ----------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_tool_loop_rides_out_a_429_storm_honouring_retry_after(
    provider_emulator: ProviderEmulator, clock: FakeClock, use_async: bool
) -> None:
    emu = provider_emulator
    emu.script(
        "gpt-x",
        [
            Fault.rate_limit(retry_after=2.0),
            Success(tool_calls=(ToolCall("get_weather", {"city": "Paris"}),)),
            Fault.rate_limit(retry_after=3.0),
            Fault.rate_limit(retry_after=3.0),
            Success("It is sunny in Paris.", tool_calls=()),
        ],
    )
    events: list[ResilienceEvent] = []
    agent = create_agent(openai(emu), tools=[get_weather], middleware=[middleware(clock, events=events)])

    result = ask(agent, "weather in Paris?", use_async=use_async)

    messages = result["messages"]
    [tool_message] = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_message.content == "sunny in Paris"
    assert messages[-1].content == "It is sunny in Paris."
    assert emu.count("gpt-x") == 5  # one request per attempt: the SDK's own retries are off
    delays = [e.delay for e in events if e.kind == "retry"]
    assert len(delays) == 3
    assert delays[0] is not None and delays[0] >= 2.0  # Retry-After honoured, not a 0.5 s backoff
    assert all(d is not None and d >= 3.0 for d in delays[1:])
    # The tools went out on every attempt, not only the first.
    assert all(tool_names(r.body) == ["get_weather"] for r in emu.requests)


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_outage_falls_back_and_the_dead_primary_gets_bounded_requests(
    provider_emulator: ProviderEmulator, clock: FakeClock, use_async: bool
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    emu.script(
        "claude-x",
        [
            Success(tool_calls=(ToolCall("get_weather", {"city": "Oslo"}),)),
            Success("Sunny in Oslo.", tool_calls=()),
            Success("Still sunny.", tool_calls=()),
        ],
    )
    events: list[ResilienceEvent] = []
    mw = middleware(clock, anthropic(emu), events=events)
    agent = create_agent(openai(emu), tools=[get_weather], middleware=[mw])

    first, second = ask(agent, "weather in Oslo?", "and now?", use_async=use_async)

    assert first["messages"][-1].content == "Sunny in Oslo."
    assert [m.content for m in first["messages"] if isinstance(m, ToolMessage)] == ["sunny in Oslo"]
    assert second["messages"][-1].content == "Still sunny."
    # 3 attempts (max_retries=2) open the breaker (threshold 3); every later call skips the primary at once.
    assert emu.count("gpt-x") == 3
    assert emu.count("claude-x") == 3
    rejected = [e for e in events if e.kind == "rejected"]
    assert len(rejected) == 2 and all(e.code is StandardErrorCode.OVERLOADED for e in rejected)
    # The fallback got the agent's tools, in Anthropic's format.
    assert all(tool_names(r.body) == ["get_weather"] for r in emu.requests if r.model == "claude-x")
    assert all("input_schema" in r.body["tools"][0] for r in emu.requests if r.model == "claude-x")


def test_state_is_shared_with_resilient_chat_model_of_the_same_target(
    provider_emulator: ProviderEmulator, clock: FakeClock
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    emu.set_default("claude-x", Success("from claude"))
    primary = openai(emu)
    mw = middleware(clock, anthropic(emu))
    agent = create_agent(primary, middleware=[mw])
    ask(agent, "hi", use_async=False)
    assert emu.count("gpt-x") == 3

    # Another entry point naming the same target finds its circuit open: no request is sent.
    model = ResilientChatModel(CONFIG, model=openai(emu), fallbacks=[anthropic(emu)], clock=clock)
    assert model.targets == mw.targets_for(primary)
    assert model.invoke("hi").content == "from claude"
    assert emu.count("gpt-x") == 3


# --- fallback only on fallbackable codes; composing with ModelRetryMiddleware ---------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_invalid_request_reaches_the_provider_once_under_model_retry_middleware(
    provider_emulator: ProviderEmulator, clock: FakeClock, use_async: bool
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.content_filter())  # a 400
    emu.set_default("claude-x", Success("should not be asked"))
    agent = create_agent(
        openai(emu),
        middleware=[ModelRetryMiddleware(max_retries=3, initial_delay=0.0), middleware(clock, anthropic(emu))],
    )
    with pytest.raises(InvalidRequestError) as info:
        ask(agent, "hi", use_async=use_async)
    assert isinstance(info.value, lc.ModelInvalidRequestError) and not info.value.is_retryable
    assert emu.count("gpt-x") == 1  # not retried by us, not by ModelRetryMiddleware
    assert emu.count("claude-x") == 0  # not fallen back from


def test_spent_quota_falls_back_without_a_retry(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.quota())
    emu.set_default("claude-x", Success("from claude"))
    agent = create_agent(openai(emu), middleware=[middleware(clock, anthropic(emu))])
    assert ask(agent, "hi", use_async=False)["messages"][-1].content == "from claude"
    assert emu.count("gpt-x") == 1


def test_spent_quota_is_not_retried_by_model_retry_middleware(
    provider_emulator: ProviderEmulator, clock: FakeClock
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.quota())
    agent = create_agent(
        openai(emu), middleware=[ModelRetryMiddleware(max_retries=3, initial_delay=0.0), middleware(clock)]
    )
    with pytest.raises(QuotaExhaustedError) as info:
        ask(agent, "hi", use_async=False)
    assert isinstance(info.value, lc.ModelRateLimitError) and info.value.is_retryable is False
    assert emu.count("gpt-x") == 1


def test_open_circuit_is_not_retried_by_model_retry_middleware(
    provider_emulator: ProviderEmulator, clock: FakeClock
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    retry = ModelRetryMiddleware(max_retries=5, initial_delay=0.0, on_failure="error")
    agent = create_agent(openai(emu), middleware=[retry, middleware(clock)])
    with pytest.raises(lc.ModelAPIError):
        ask(agent, "hi", use_async=False)
    # Our 3 attempts opened the circuit; ModelRetryMiddleware's next call met it (is_retryable False) and stopped.
    assert emu.count("gpt-x") == 3


# --- other built-in middlewares --------------------------------------------------------------------------------


@pytest.mark.parametrize("run_limit", [1, 2])
def test_model_call_limit_counts_a_retried_call_once(
    provider_emulator: ProviderEmulator, clock: FakeClock, run_limit: int
) -> None:
    from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError

    emu = provider_emulator
    emu.script(
        "gpt-x",
        [
            Fault.server_error(),
            Success(tool_calls=(ToolCall("get_weather", {"city": "Rome"}),)),
            Fault.server_error(),
            Fault.server_error(),
            Success("Sunny in Rome.", tool_calls=()),
        ],
    )
    agent = create_agent(
        openai(emu),
        tools=[get_weather],
        middleware=[
            ModelCallLimitMiddleware(run_limit=run_limit, exit_behavior="error"),
            ToolRetryMiddleware(max_retries=1, initial_delay=0.0),
            middleware(clock),
        ],
    )
    if run_limit == 2:  # 5 requests, 2 model calls: within the limit
        assert ask(agent, "weather in Rome?", use_async=False)["messages"][-1].content == "Sunny in Rome."
        assert emu.count("gpt-x") == 5
    else:  # the first call (2 requests) counted once; the limit stops the second before any request
        with pytest.raises(ModelCallLimitExceededError):
            ask(agent, "weather in Rome?", use_async=False)
        assert emu.count("gpt-x") == 2


def test_summarization_middleware_composes(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.set_default("gpt-summary", Success("summary of the chat"))
    emu.script("gpt-x", [Fault.rate_limit(retry_after=1.0), Success("answer")])
    summarizer = SummarizationMiddleware(
        model=openai(emu, "gpt-summary"), trigger=("messages", 3), keep=("messages", 1)
    )
    agent = create_agent(openai(emu), middleware=[summarizer, middleware(clock)])
    history = [("user", "one"), ("assistant", "two"), ("user", "three"), ("assistant", "four"), ("user", "five")]
    result = agent.invoke({"messages": history})
    assert result["messages"][-1].content == "answer"
    assert emu.count("gpt-summary") == 1
    assert emu.count("gpt-x") == 2


# --- response_format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_provider_strategy_answer_comes_from_the_fallback(
    provider_emulator: ProviderEmulator, clock: FakeClock, use_async: bool
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    emu.set_default("gpt-y", Success(json.dumps({"city": "Lima", "forecast": "mild"})))
    agent = create_agent(
        openai(emu), response_format=ProviderStrategy(Weather), middleware=[middleware(clock, openai(emu, "gpt-y"))]
    )
    result = ask(agent, "weather in Lima?", use_async=use_async)
    assert result["structured_response"] == Weather(city="Lima", forecast="mild")
    assert emu.count("gpt-x") == 3 and emu.count("gpt-y") == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_tool_strategy_with_tools_falls_back_to_anthropic(
    provider_emulator: ProviderEmulator, clock: FakeClock, use_async: bool
) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    emu.script(
        "claude-x",
        [
            Success(tool_calls=(ToolCall("get_weather", {"city": "Quito"}),)),
            Success(tool_calls=(ToolCall("Weather", {"city": "Quito", "forecast": "sunny"}),)),
        ],
    )
    agent = create_agent(
        openai(emu),
        tools=[get_weather],
        response_format=ToolStrategy(Weather),
        middleware=[middleware(clock, anthropic(emu))],
    )
    result = ask(agent, "weather in Quito?", use_async=use_async)
    assert result["structured_response"] == Weather(city="Quito", forecast="sunny")
    assert [m.content for m in result["messages"] if isinstance(m, ToolMessage)][0] == "sunny in Quito"
    assert emu.count("claude-x") == 2
    assert emu.count("gpt-x") == 3  # then its circuit is open for the second model call


def test_structured_output_errors_pass_through_unchanged(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Success(json.dumps({"city": 5})))  # JSON, but not a Weather
    events: list[ResilienceEvent] = []
    agent = create_agent(
        openai(emu), response_format=ProviderStrategy(Weather), middleware=[middleware(clock, events=events)]
    )
    with pytest.raises(StructuredOutputValidationError):
        ask(agent, "weather?", use_async=False)
    assert emu.count("gpt-x") == 1
    assert events == []  # not a model failure: nothing retried, recorded or fallen back from


# --- construction ----------------------------------------------------------------------------------------------


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="fallbacks must be a list"):
        ResilienceMiddleware(fallbacks="openai/gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a ResilientConfig"):
        ResilienceMiddleware(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ResilienceMiddleware(fallbacks=[object()])  # type: ignore[list-item]


def test_the_users_model_is_not_changed(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Success("hi"))
    primary = openai(emu)
    agent = create_agent(primary, middleware=[middleware(clock)])
    assert isinstance(ask(agent, "hi", use_async=False)["messages"][-1], AIMessage)
    assert primary.max_retries is None


# --- model strings, concurrency and cancellation ---------------------------------------------------------------


def test_fallbacks_as_langchain_model_strings(
    provider_emulator: ProviderEmulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = provider_emulator
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.anthropic_base)
    emu.set_default("gpt-x", Fault.overloaded())
    emu.set_default("claude-x", Success("from claude"))
    mw = ResilienceMiddleware(CONFIG, fallbacks=["anthropic:claude-x"], clock=clock)
    agent = create_agent(openai(emu), middleware=[mw])
    assert ask(agent, "hi", use_async=False)["messages"][-1].content == "from claude"
    assert emu.count("gpt-x") == 3 and emu.count("claude-x") == 1
    assert mw.targets_for(openai(emu))[1].startswith("anthropic/claude-x")


async def test_concurrent_agents_share_the_in_flight_limit(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Success("ok", latency=0.05))
    config = ResilientConfig(backpressure=BackpressureConfig(max_inflight=2, max_wait=10.0))
    mw = ResilienceMiddleware(config)
    agent = create_agent(openai(emu), middleware=[mw])
    results = await asyncio.gather(*(agent.ainvoke({"messages": [("user", f"q{i}")]}) for i in range(6)))
    assert [r["messages"][-1].content for r in results] == ["ok"] * 6
    assert emu.peak_in_flight("gpt-x") == 2
    [target] = mw.targets_for(openai(emu))
    assert mw.executor.signals_snapshot(target).current_inflight == 0


async def test_cancelling_an_agent_run_gives_the_permit_back(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.hang(5.0))
    mw = ResilienceMiddleware(ResilientConfig())
    agent = create_agent(openai(emu), middleware=[mw])
    task = asyncio.create_task(agent.ainvoke({"messages": [("user", "hi")]}))
    for _ in range(200):  # until the request is being answered
        if emu.in_flight("gpt-x"):
            break
        await asyncio.sleep(0.01)
    [target] = mw.targets_for(openai(emu))
    assert mw.executor.signals_snapshot(target).current_inflight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = mw.executor.signals_snapshot(target)
    assert snapshot.current_inflight == 0
    assert snapshot.consecutive_failures == 0  # a cancellation says nothing about the provider
    assert emu.count("gpt-x") == 1  # and is never retried


# --- events as LangChain custom events ---------------------------------------------------------------------------


class _CustomEvents(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.names.append(name)


def test_events_reach_callbacks_as_custom_events(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.script("gpt-x", [Fault.rate_limit(retry_after=1.0)])
    emu.set_default("gpt-x", Success("ok"))
    handler = _CustomEvents()
    agent = create_agent(openai(emu), middleware=[middleware(clock)])
    agent.invoke({"messages": [("user", "hi")]}, config={"callbacks": [handler]})
    assert handler.names == ["resilience.retry"]


async def test_events_show_in_astream_events(provider_emulator: ProviderEmulator, clock: FakeClock) -> None:
    emu = provider_emulator
    emu.set_default("gpt-x", Fault.overloaded())
    emu.set_default("claude-x", Success("from claude"))
    agent = create_agent(openai(emu), middleware=[middleware(clock, anthropic(emu))])
    names = [
        event["name"]
        async for event in agent.astream_events({"messages": [("user", "hi")]}, version="v2")
        if event["event"] == "on_custom_event"
    ]
    assert names.count("resilience.retry") == 2
    assert "resilience.fallback" in names and "resilience.state_change" in names
