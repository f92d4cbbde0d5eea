"""The one event stream: who hears what, from every source, and the logger built on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilienceEvent,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    events,
)
from langchain_ailib_resilience.observability import _logging
from langchain_ailib_resilience.registry import Registry

SECRET = "sk-test-SECRETKEY0123456789"
CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=2, initial_delay=1, max_delay=4, jitter="none"),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
)


class Failing:
    def __init__(self, *codes: str) -> None:
        self.codes = list(codes)

    async def __call__(self) -> str:
        if self.codes:
            raise ResilienceError(f"upstream said no (api_key={SECRET})", code=self.codes.pop(0))
        return "ok"


@pytest.fixture
def heard() -> Iterator[list[ResilienceEvent]]:
    got: list[ResilienceEvent] = []
    unsubscribe = events.subscribe(got.append)
    yield got
    unsubscribe()


async def test_subscribers_hear_decisions_and_breaker_transitions_once(
    clock: FakeClock, heard: list[ResilienceEvent]
) -> None:
    own: list[ResilienceEvent] = []
    executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock, listeners=[own.append])
    await executor.execute_chain([("a", Failing("E3002", "E3002", "E3002")), ("b", Failing())])

    kinds = [e.kind for e in heard]
    # No attempt/success (the happy path is for a call's own listeners); the second failure opens the circuit
    # before the retry is decided.
    assert kinds == ["retry", "state_change", "retry", "rejected", "fallback"]
    change = heard[1]
    assert change.detail == {"from_state": "closed", "to_state": "open"} and change.target == "a"
    assert heard[3].detail["reason"] == "circuit_open"
    # The executor's own listener hears the decisions, the transition this call caused included, with its
    # from_state; the happy path's attempt/success are for observers (instrumentation) only.
    assert [e.kind for e in own] == ["retry", "state_change", "retry", "rejected", "fallback"]
    assert own[1].detail == {"from_state": "closed", "to_state": "open"}


async def test_a_failed_call_ends_with_one_failure_event(clock: FakeClock, heard: list[ResilienceEvent]) -> None:
    executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock)
    with pytest.raises(ResilienceError):
        await executor.execute(Failing("E1001"), target="a")
    assert [e.kind for e in heard] == ["give_up", "failure"]
    assert heard[-1].code is not None and heard[-1].code.error_name == "invalid_request"


def test_a_broken_listener_or_observer_never_breaks_a_call(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: ResilienceEvent) -> None:
        raise RuntimeError("listener bug")

    def broken_observer() -> events.EventListener | None:
        raise RuntimeError("observer bug")

    undo = events.observe_calls(broken_observer)
    try:
        executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock, listeners=[broken])
        outcomes: list[str] = ["E3001"]

        def flaky() -> str:
            if outcomes:
                raise ResilienceError("once", code=outcomes.pop())
            return "fine"

        assert executor.execute_sync(flaky, target="a") == "fine"  # its retry event reached the broken listener
    finally:
        undo()
    assert "observer bug" in caplog.text and "listener bug" in caplog.text


def test_observers_are_asked_once_per_call_and_can_decline(clock: FakeClock) -> None:
    asked: list[int] = []
    got: list[str] = []

    def observer() -> events.EventListener | None:
        asked.append(1)
        return (lambda e: got.append(e.kind)) if len(asked) == 1 else None

    undo = events.observe_calls(observer)
    try:
        executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock)
        executor.execute_sync(lambda: "one", target="a")
        executor.execute_sync(lambda: "two", target="a")
    finally:
        undo()
    assert len(asked) == 2 and got == ["attempt", "success"]
    assert events.call_listeners() == ()  # undone


# --- logging ----------------------------------------------------------------------------------------------


async def test_the_logger_reports_retries_transitions_rejections_and_fallbacks(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ailib_resilience")
    executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock)
    await executor.execute_chain([("a", Failing("E2001", "E2001", "E2001")), ("b", Failing())])

    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "langchain_ailib_resilience"]
    assert records == [
        ("INFO", "retrying a (attempt 1 failed: rate_limited (E2001)) in 1.000s"),
        ("WARNING", "circuit a: closed -> open"),
        ("INFO", "retrying a (attempt 2 failed: rate_limited (E2001)) in 2.000s"),
        ("INFO", "a refused a request before sending it: circuit_open, overloaded (E3002)"),
        ("INFO", "falling back from a to b after overloaded (E3002)"),
    ]
    assert all("SECRETKEY" not in r.getMessage() for r in caplog.records)
    retry = next(r for r in caplog.records if r.getMessage().startswith("retrying"))
    assert retry.resilience["delay"] == 1.0  # type: ignore[attr-defined]
    assert "SECRETKEY" not in str(retry.resilience)  # type: ignore[attr-defined]


async def test_by_default_only_an_opened_circuit_is_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_ailib_resilience")
    executor = ResilientExecutor(CONFIG, registry=Registry(), clock=clock)
    await executor.execute_chain([("a", Failing("E3002", "E3002")), ("b", Failing())])
    ours = [r for r in caplog.records if r.name == "langchain_ailib_resilience"]
    assert [(r.levelname, r.getMessage()) for r in ours] == [("WARNING", "circuit a: closed -> open")]


def test_a_failed_calls_message_is_logged_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ailib_resilience")
    raw = RuntimeError(f"boom with Authorization: Bearer {SECRET}")  # not a ResilienceError: never redacted before
    _logging.log_event(ResilienceEvent("failure", "a", error=raw))
    (record,) = caplog.records
    assert "SECRETKEY" not in record.getMessage() and "[REDACTED]" in record.getMessage()
    assert "SECRETKEY" not in str(record.resilience)  # type: ignore[attr-defined]


def test_waits_are_debug_and_the_happy_path_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="langchain_ailib_resilience")
    _logging.log_event(ResilienceEvent("attempt", "a", 1))
    _logging.log_event(ResilienceEvent("success", "a"))
    _logging.log_event(ResilienceEvent("rate_limit_wait", "a", 1, delay=0.25))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "waited 0.250s for a's rate limit or in-flight limit")
    ]


def test_a_subscriber_that_hears_no_such_kind_does_not_count_as_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_subscribers", events._Hooks())
    got: list[ResilienceEvent] = []
    unsubscribe = events.subscribe(got.append, hears=lambda kind: kind == "retry")
    assert not events.subscribed("rate_limit_wait")
    assert events.subscribed("retry") and events.subscribed()
    unsubscribe()
    assert not events.subscribed() and got.append not in events._hearing  # unsubscribing forgets its ``hears``


async def test_a_quiet_wait_is_logged_when_debug_logging_is_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The executor skips building a wait event nobody hears; the logger at DEBUG hears it, so it is built."""
    config = ResilientConfig(rate_limiter=RateLimiterConfig(requests_per_second=2, burst_size=1))
    executor = ResilientExecutor(config, registry=Registry(), clock=clock)
    ok = Failing()
    await executor.execute(ok, target="t")
    caplog.set_level(logging.INFO, logger="langchain_ailib_resilience")
    await executor.execute(ok, target="t")
    assert not [r for r in caplog.records if "waited" in r.getMessage()]  # INFO: the wait is not logged
    caplog.set_level(logging.DEBUG, logger="langchain_ailib_resilience")
    await executor.execute(ok, target="t")
    assert [r.getMessage() for r in caplog.records if "waited" in r.getMessage()] == [
        "waited 0.500s for t's rate limit or in-flight limit"
    ]
