"""Configuration edges: values the fields allow are accepted from the environment, errors name the variable,
passwords never reach a message or a repr, and counts are integers, not booleans."""

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

PASSWORD = "s3cr3t-Passw0rd-xyz"


def test_a_long_cooldown_from_the_environment_raises_the_default_cap() -> None:
    config = ResilientConfig.from_env({"AI_LIB_BREAKER_COOLDOWN_SECS": "600"})
    assert config.circuit_breaker.cooldown_seconds == 600
    assert config.circuit_breaker.max_cooldown_seconds == 600


def test_the_cap_follows_the_cooldown_only_when_not_set() -> None:
    assert CircuitBreakerConfig(cooldown_seconds=900).max_cooldown_seconds == 900
    assert CircuitBreakerConfig(cooldown_seconds=30).max_cooldown_seconds == 300
    assert CircuitBreakerConfig(cooldown_seconds=10, max_cooldown_seconds=20).max_cooldown_seconds == 20
    with pytest.raises(ValidationError, match="max_cooldown_seconds"):
        CircuitBreakerConfig(cooldown_seconds=600, max_cooldown_seconds=300)


@pytest.mark.parametrize("raw", ["0", "-0", "+0", "0.0", "-0.0"])
def test_zero_where_the_field_allows_it(raw: str) -> None:
    config = ResilientConfig.from_env({"AI_LIB_RATE_MAX_WAIT": raw, "AI_LIB_MAX_RETRIES": raw.replace(".0", "")})
    assert config.rate_limiter.max_wait == 0
    assert str(config.rate_limiter.max_wait) == "0.0"  # never -0.0
    assert config.retry.max_retries == 0


@pytest.mark.parametrize("variable", ["AI_LIB_RPS", "AI_LIB_MAX_INFLIGHT", "AI_LIB_BREAKER_COOLDOWN_SECS"])
@pytest.mark.parametrize("raw", ["0", "-0", "+0"])
def test_zero_where_the_field_forbids_it_names_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        ResilientConfig.from_env({variable: raw})


def test_timeout_conflict_names_both_variables() -> None:
    with pytest.raises(ConfigError) as info:
        ResilientConfig.from_env({"AI_LIB_ATTEMPT_TIMEOUT": "10", "AI_LIB_TOTAL_TIMEOUT": "5"})
    assert "AI_LIB_ATTEMPT_TIMEOUT" in str(info.value)
    assert "AI_LIB_TOTAL_TIMEOUT" in str(info.value)


def test_a_bad_state_url_is_not_echoed_with_its_password() -> None:
    for url in (f"http://user:{PASSWORD}@10.0.0.1:6379/0", f"redis:/:{PASSWORD}@10.0.0.1"):
        with pytest.raises(ConfigError, match="AI_LIB_STATE_URL") as info:
            ResilientConfig.from_env({"AI_LIB_STATE_URL": url})
        assert PASSWORD not in str(info.value)
        with pytest.raises(ValidationError) as direct:
            ResilientConfig(state_url=url)
        assert PASSWORD not in str(direct.value)
        assert "state_url" in str(direct.value)


def test_repr_of_a_config_hides_the_state_url_password() -> None:
    config = ResilientConfig(state_url=f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    assert config.state_url == f"redis://:{PASSWORD}@127.0.0.1:6379/0"  # the value itself is kept
    for text in (repr(config), str(config)):
        assert PASSWORD not in text
        assert "127.0.0.1:6379/0" in text


@pytest.mark.parametrize("value", ["60", None, True, [60]])
def test_per_minute_of_a_non_number_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match="requests_per_minute"):
        RateLimiterConfig.per_minute(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda v: CircuitBreakerConfig(failure_threshold=v), "failure_threshold"),
        (lambda v: CircuitBreakerConfig(half_open_max_calls=v), "half_open_max_calls"),
        (lambda v: CircuitBreakerConfig(success_threshold=v), "success_threshold"),
        (lambda v: CircuitBreakerConfig(minimum_calls=v), "minimum_calls"),
        (lambda v: RetryConfig(max_retries=v), "max_retries"),
        (lambda v: RateLimiterConfig(requests_per_second=1, burst_size=v), "burst_size"),
        (lambda v: BackpressureConfig(max_inflight=v), "max_inflight"),
        (lambda v: BackpressureConfig(max_queue=v), "max_queue"),
    ],
)
@pytest.mark.parametrize("value", [True, False, 2.0, "3"])
def test_counts_are_strict_integers(build, field: str, value: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=field):
        build(value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://alice:{PASSWORD}@10.0.0.1:6379/0", "redis://[REDACTED]@10.0.0.1:6379/0"),
        (f"redis://:{PASSWORD}@10.0.0.1:6379/0", "redis://[REDACTED]@10.0.0.1:6379/0"),
        (f"redis:/:{PASSWORD}@10.0.0.1", "[REDACTED]@10.0.0.1"),
        ("redis://10.0.0.1:6379/0", "redis://10.0.0.1:6379/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    from langchain_ailib_resilience.state import redact_url

    assert redact_url(url) == shown
