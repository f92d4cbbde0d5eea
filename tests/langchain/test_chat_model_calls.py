"""ResilientChatModel: retry, fallback, breaker and limits on every call entry point."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from lc_helpers import FAST, bad_request, overloaded, quota, resilient, scripted, server_error

from langchain_ailib_resilience import (
    CircuitOpenError,
    FakeClock,
    InvalidRequestError,
    OverloadedError,
    ResilientConfig,
    RetryConfig,
    ServerError,
)


def echo(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
    text = messages[-1].text
    return bad_request() if text == "bad" else f"echo {text}"


def test_invoke_retries_a_server_error_then_answers(clock: FakeClock) -> None:
    primary = scripted(server_error(), "hello")
    model = resilient(primary, clock=clock)
    assert model.invoke("hi").content == "hello"
    assert len(primary.calls) == 2
    assert clock.sleeps == [0.5]


async def test_ainvoke_retries_a_server_error_then_answers(clock: FakeClock) -> None:
    primary = scripted(server_error(), server_error(), "hello")
    model = resilient(primary, clock=clock)
    assert (await model.ainvoke("hi")).content == "hello"
    assert len(primary.calls) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_bad_request_stops_at_once_without_retry_or_fallback(clock: FakeClock) -> None:
    primary, backup = scripted(bad_request()), scripted("unused", name="backup")
    model = resilient(primary, backup, clock=clock)
    with pytest.raises(InvalidRequestError) as info:
        model.invoke("hi")
    assert isinstance(info.value.__cause__, openai.BadRequestError)
    assert len(primary.calls) == 1
    assert backup.calls == []
    assert clock.sleeps == []


def test_quota_is_not_retried_but_falls_back(clock: FakeClock) -> None:
    primary, backup = scripted(quota()), scripted("from backup", name="backup")
    model = resilient(primary, backup, clock=clock)
    assert model.invoke("hi").content == "from backup"
    assert len(primary.calls) == 1
    assert clock.sleeps == []


def test_retries_exhausted_then_falls_back(clock: FakeClock) -> None:
    primary = scripted(server_error(), server_error(), server_error())
    backup = scripted("from backup", name="backup")
    model = resilient(primary, backup, clock=clock)
    assert model.invoke("hi").content == "from backup"
    assert len(primary.calls) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_all_targets_failing_raise_the_last_normalised_error_with_history(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted(overloaded(), cycle=True, name="backup"), clock=clock)
    with pytest.raises(OverloadedError) as info:
        model.invoke("hi")
    targets = [record.target for record in info.value.attempts]
    assert targets == ["test/primary", "test/backup", "test/backup", "test/backup"]


def test_breaker_opens_per_target_and_sends_calls_to_the_fallback(clock: FakeClock) -> None:
    primary = scripted(overloaded(), cycle=True)
    backup = scripted("from backup", name="backup", cycle=True)
    model = resilient(primary, backup, clock=clock)
    assert model.invoke("hi").content == "from backup"  # 3 failures: the primary's breaker opens
    assert len(primary.calls) == 3
    assert model.invoke("again").content == "from backup"
    assert len(primary.calls) == 3  # open circuit: the primary was not called at all
    snapshot = model.signals_snapshot()
    assert snapshot.target == "test/primary"
    assert snapshot.circuit_state == "open"
    assert snapshot.targets["test/backup"].circuit_state == "closed"
    assert snapshot.current_inflight == 0


def test_open_circuit_without_fallback_raises_circuit_open(clock: FakeClock) -> None:
    model = resilient(scripted(overloaded(), cycle=True), clock=clock)
    with pytest.raises(OverloadedError):
        model.invoke("hi")
    with pytest.raises(CircuitOpenError) as info:
        model.invoke("hi")
    assert info.value.retry_after == pytest.approx(30.0, abs=1.0)


def test_batch_returns_exceptions_in_place(clock: FakeClock) -> None:
    model = resilient(scripted(echo, cycle=True), clock=clock)
    results = model.batch(["one", "bad", "two"], return_exceptions=True)
    assert [getattr(r, "content", None) for r in results] == ["echo one", None, "echo two"]
    assert isinstance(results[1], InvalidRequestError)
    with pytest.raises(InvalidRequestError):
        model.batch(["one", "bad"])


async def test_abatch_returns_exceptions_in_place(clock: FakeClock) -> None:
    model = resilient(scripted(echo, cycle=True), clock=clock)
    results = await model.abatch(["one", "bad", "two"], return_exceptions=True)
    assert [getattr(r, "content", None) for r in results] == ["echo one", None, "echo two"]
    assert isinstance(results[1], InvalidRequestError)


def test_generate_retries_through_the_models_own_llm_run(clock: FakeClock) -> None:
    primary = scripted(server_error(), "hello")
    model = resilient(primary, clock=clock)
    result = model.generate([[HumanMessage("hi")]])
    assert result.generations[0][0].text == "hello"
    assert len(primary.calls) == 2


async def test_agenerate_falls_back(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted("from backup", name="backup"), clock=clock)
    result = await model.agenerate([[HumanMessage("hi")]])
    assert result.generations[0][0].text == "from backup"


def test_stop_is_passed_to_every_target_and_defaults_from_the_model(clock: FakeClock) -> None:
    primary, backup = scripted(server_error(), server_error(), server_error()), scripted("a, b", name="backup")
    model = resilient(primary, backup, clock=clock, stop=[","])
    assert model.invoke("hi").content == "a"
    assert all(call.kwargs["stop"] == [","] for call in [*primary.calls, *backup.calls])
    again = scripted("x; y", cycle=True, name="other")
    assert resilient(again, clock=clock, stop=[","]).invoke("hi", stop=[";"]).content == "x"


def test_wrapped_models_own_retries_are_turned_off(clock: FakeClock) -> None:
    config = ResilientConfig(retry=RetryConfig(max_retries=1, initial_delay=0.5, jitter="none", budget=None))
    inner = scripted(server_error(), server_error(), "third", max_retries=2)
    model = resilient(inner, clock=clock, config=config)
    with pytest.raises(ServerError):
        model.invoke("hi")  # two wrapper attempts, one request each: the inner model's retries are off
    assert len(inner.calls) == 2
    assert inner.max_retries == 2  # the caller's instance is untouched


def test_inner_retries_can_be_kept_and_then_multiply(clock: FakeClock) -> None:
    inner = scripted(server_error(), server_error(), "third", max_retries=2)
    model = resilient(inner, clock=clock, disable_inner_retries=False)
    assert model.invoke("hi").content == "third"
    assert len(inner.calls) == 3  # all three inside the first wrapper attempt
    assert clock.sleeps == []


def test_max_retries_standard_parameter_sets_the_retry_count(clock: FakeClock) -> None:
    primary = scripted(server_error(), server_error(), "third")
    model = resilient(primary, clock=clock, max_retries=1)
    assert model.config.retry.max_retries == 1
    with pytest.raises(ServerError):
        model.invoke("hi")
    assert len(primary.calls) == 2


def test_state_is_shared_by_target_name_across_models(clock: FakeClock) -> None:
    first = resilient(scripted(overloaded(), cycle=True), clock=clock)
    with pytest.raises(OverloadedError):
        first.invoke("hi")
    second = resilient(scripted("never called"), clock=clock)  # the same target name: test/primary
    with pytest.raises(CircuitOpenError):
        second.invoke("hi")


async def test_attempt_timeout_on_async_calls_retries_then_falls_back(clock: FakeClock) -> None:
    config = FAST.model_copy(update={"attempt_timeout": 1.0})
    slow = scripted("too late", "too late", "too late", latency=5.0, clock=clock)
    model = resilient(slow, scripted("in time", name="backup"), clock=clock, config=config)
    assert (await model.ainvoke("hi")).content == "in time"
    assert len(slow.calls) == 0  # every attempt was cut off while the slow model was still "thinking"
    assert clock.now() == pytest.approx(3 * 1.0 + 0.5 + 1.0)


async def test_cancelled_call_gives_back_its_permit() -> None:
    import asyncio

    manual = FakeClock(auto_advance=False)
    model = resilient(scripted("late", latency=10.0, clock=manual), clock=manual)
    task = asyncio.create_task(model.ainvoke("hi"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert model.signals_snapshot().current_inflight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = model.signals_snapshot()
    assert (snapshot.current_inflight, snapshot.consecutive_failures) == (0, 0)


def test_the_wrappers_own_rate_limiter_is_honoured(clock: FakeClock) -> None:
    from langchain_ailib_resilience import RateLimiter

    limiter = RateLimiter(requests_per_second=4, burst_size=1, clock=clock)
    model = resilient(scripted("ok", cycle=True), clock=clock, rate_limiter=limiter)
    for _ in range(3):
        model.invoke("hi")
    assert clock.sleeps == [0.25, 0.25]
