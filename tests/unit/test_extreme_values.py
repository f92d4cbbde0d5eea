"""Extreme durations: refused at validation with the field's name, and never an OverflowError from a sync wait.

``time.sleep`` and ``threading.Event.wait`` raise ``OverflowError`` past ``threading.TIMEOUT_MAX`` (about 292
years); the system clock clamps every wait to it, and configuration refuses longer values.
"""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    RateLimiterConfig,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience import clock as clock_module
from langchain_ailib_resilience.clock import SystemClock
from langchain_ailib_resilience.registry import Registry

HUGE = 1e10


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: RetryConfig(initial_delay=HUGE, max_delay=HUGE), "initial_delay"),
        (lambda: RetryConfig(max_delay=HUGE), "max_delay"),
        (lambda: RetryConfig(max_retry_after=HUGE), "max_retry_after"),
        (lambda: RateLimiterConfig(max_wait=HUGE), "max_wait"),
        (lambda: BackpressureConfig(max_wait=HUGE), "max_wait"),
        (lambda: CircuitBreakerConfig(cooldown_seconds=HUGE), "cooldown_seconds"),
        (lambda: CircuitBreakerConfig(max_cooldown_seconds=HUGE), "max_cooldown_seconds"),
        (lambda: ResilientConfig(attempt_timeout=HUGE), "attempt_timeout"),
        (lambda: ResilientConfig(total_timeout=HUGE), "total_timeout"),
    ],
)
def test_durations_past_what_the_platform_can_wait_are_refused(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=field):
        build()


def test_the_longest_allowed_durations_build() -> None:
    longest = threading.TIMEOUT_MAX
    config = ResilientConfig(
        retry=RetryConfig(initial_delay=longest, max_delay=longest, max_retry_after=longest),
        rate_limiter=RateLimiterConfig(max_wait=longest),
        total_timeout=longest,
        attempt_timeout=longest,
    )
    assert config.total_timeout == longest


class _PlatformWait:
    """Stands in for the platform's wait: records the timeout, raises as the platform does past TIMEOUT_MAX,
    and stops the caller (raising ``_Stop``) instead of blocking."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def __call__(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        if timeout is not None and timeout > threading.TIMEOUT_MAX:
            raise OverflowError("timestamp out of range for platform time_t")
        raise _Stop


class _Stop(BaseException):
    pass


class _Event:
    def __init__(self, platform: _PlatformWait) -> None:
        self.wait = platform


def test_system_clock_clamps_sleep_and_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = _PlatformWait()
    monkeypatch.setattr(clock_module.time, "sleep", platform)
    with pytest.raises(_Stop):
        SystemClock().sleep(1e300)
    with pytest.raises(_Stop):
        SystemClock().wait(_Event(platform), 1e300)  # type: ignore[arg-type]
    assert platform.timeouts == [threading.TIMEOUT_MAX, threading.TIMEOUT_MAX]


def test_a_sync_rate_limit_wait_of_centuries_is_no_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limiter refilling once in ~3,000 years, no max_wait: the sync caller sleeps (clamped), never overflows."""
    platform = _PlatformWait()
    monkeypatch.setattr(clock_module.time, "sleep", platform)
    config = ResilientConfig(
        rate_limiter=RateLimiterConfig(requests_per_second=1e-11, burst_size=1, max_wait=None),
        retry=RetryConfig(max_retries=0),
    )
    executor = ResilientExecutor(config, registry=Registry())
    assert executor.execute_sync(lambda: "first", target="slow") == "first"
    with pytest.raises(_Stop):
        executor.execute_sync(lambda: "second", target="slow")
    assert platform.timeouts and all(t is not None and t <= threading.TIMEOUT_MAX for t in platform.timeouts)
