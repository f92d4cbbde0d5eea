"""Configuration: validation messages, immutability, presets, and AI_LIB_* environment variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    ConfigError,
    RateLimiterConfig,
    ResilientConfig,
    RetryConfig,
)


def test_seed_example_builds() -> None:
    config = ResilientConfig(
        retry=RetryConfig(max_retries=3, initial_delay=1.0, max_delay=30.0, backoff_multiplier=2.0),
        rate_limiter=RateLimiterConfig(requests_per_second=10),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5, cooldown_seconds=30),
        backpressure=BackpressureConfig(max_inflight=50),
    )
    assert config.rate_limiter.effective_burst == 10
    with pytest.raises(ValidationError, match="frozen"):
        config.retry.max_retries = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: RetryConfig(initial_delay=5, max_delay=1), "max_delay"),
        (lambda: RetryConfig(max_retries=-1), "max_retries"),
        (lambda: RetryConfig(initial_delay=float("nan")), "initial_delay"),
        (lambda: RateLimiterConfig(requests_per_second=0), "requests_per_second"),
        (lambda: RateLimiterConfig(requests_per_second=float("inf")), "requests_per_second"),
        (lambda: CircuitBreakerConfig(failure_threshold=0), "failure_threshold"),
        (lambda: BackpressureConfig(max_inflight=0), "max_inflight"),
        (lambda: ResilientConfig(attempt_timeout=10, total_timeout=5), "attempt_timeout"),
        (lambda: ResilientConfig(state_url="http://x"), "state_url"),
        (lambda: RetryConfig(retries=3), "retries"),  # a typo is an error, not silently ignored
    ],
)
def test_bad_values_name_the_field(build, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=needle):
        build()


def test_from_env_reads_the_seed_variables() -> None:
    env = {
        "AI_LIB_RPS": "5",
        "AI_LIB_BREAKER_FAILURE_THRESHOLD": "7",
        "AI_LIB_BREAKER_COOLDOWN_SECS": "12.5",
        "AI_LIB_MAX_INFLIGHT": "3",
        "AI_LIB_MAX_RETRIES": "0",
        "AI_LIB_TOTAL_TIMEOUT": "60",
    }
    config = ResilientConfig.from_env(env)
    assert config.rate_limiter.requests_per_second == 5
    assert config.circuit_breaker.failure_threshold == 7
    assert config.circuit_breaker.cooldown_seconds == 12.5
    assert config.backpressure.max_inflight == 3
    assert config.retry.max_retries == 0
    assert config.total_timeout == 60


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_LIB_RPM", "120")
    assert ResilientConfig.from_env().rate_limiter.requests_per_second == 2


def test_explicit_override_beats_environment_beats_default() -> None:
    env = {"AI_LIB_MAX_INFLIGHT": "7", "AI_LIB_RPS": "2"}
    config = ResilientConfig.from_env(env, backpressure=BackpressureConfig(max_inflight=3))
    assert config.backpressure.max_inflight == 3
    assert config.rate_limiter.requests_per_second == 2
    assert config.circuit_breaker.failure_threshold == 5


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AI_LIB_RPS": "fast"}, "AI_LIB_RPS='fast' is not a number"),
        ({"AI_LIB_RPS": "-3"}, "AI_LIB_RPS='-3' must be a positive"),
        ({"AI_LIB_RPS": "nan"}, "AI_LIB_RPS"),
        ({"AI_LIB_MAX_INFLIGHT": "2.5"}, "AI_LIB_MAX_INFLIGHT='2.5' is not an integer"),
        ({"AI_LIB_BREAKER_COOLDOWN_SECS": "soon"}, "AI_LIB_BREAKER_COOLDOWN_SECS"),
        ({"AI_LIB_RPS": "1", "AI_LIB_RPM": "60"}, "only one of AI_LIB_RPS and AI_LIB_RPM"),
        ({"AI_LIB_ATTEMPT_TIMEOUT": "10", "AI_LIB_TOTAL_TIMEOUT": "5"}, "attempt_timeout"),
        ({"AI_LIB_STATE_URL": "http://nope"}, "AI_LIB_STATE_URL"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ResilientConfig.from_env(env)


def test_presets() -> None:
    assert ResilientConfig.interactive().total_timeout == 30
    assert ResilientConfig.batch().retry.on_long_retry_after == "cap"
    assert ResilientConfig.no_retry().retry.max_retries == 0
    assert ResilientConfig.interactive(total_timeout=45).total_timeout == 45


def test_per_minute_helper() -> None:
    assert RateLimiterConfig.per_minute(600).requests_per_second == 10
    with pytest.raises(ConfigError, match="requests_per_minute"):
        RateLimiterConfig.per_minute(0)
