"""The shared bucket arithmetic's pause and the rate-limit header parser."""

from __future__ import annotations

import logging

import pytest

from langchain_ailib_resilience.clock import FakeClock
from langchain_ailib_resilience.errors.rate_headers import parse_rate_limit_headers
from langchain_ailib_resilience.policies._bucket import apply_bucket
from langchain_ailib_resilience.policies.rate_limiter import RateLimiter
from langchain_ailib_resilience.state import MemoryStateStore, SharedRateLimiter

NOW = 1_900_000_000.0


def test_pause_is_debt_one_token_when_it_ends() -> None:
    wait, level, _ = apply_bucket(5.0, 0.0, 0.0, 1, rate=10.0, burst=5, pause=2.0)
    assert wait == pytest.approx(2.0)  # nothing for 2 s, then one token
    assert apply_bucket(level, 0.0, 2.0, 1, rate=10.0, burst=5)[0] == 0.0
    # a shorter pause does not shorten a longer one already set
    _, deeper, _ = apply_bucket(level, 0.0, 0.0, 0, rate=10.0, burst=5, pause=0.5)
    assert deeper == level


def test_limiter_pause_stops_every_caller_until_it_ends() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 5, clock=clock)
    limiter.pause(1.5)
    assert not limiter.try_acquire()
    limiter.acquire_or_raise()
    assert clock.now() == pytest.approx(1.5)
    limiter.pause(float("nan"))  # ignored
    limiter.pause(-1)
    limiter.acquire_or_raise()
    assert clock.now() == pytest.approx(1.6)


def test_shared_pause_reaches_other_processes_through_the_store() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock)
    a = SharedRateLimiter(store, "k", 10, 5, clock=clock)
    b = SharedRateLimiter(store, "k", 10, 5, clock=clock)
    a.pause(2.0)
    assert not b.try_acquire()
    b.acquire_or_raise()
    assert clock.now() == pytest.approx(2.0)


def test_openai_headers_with_go_durations() -> None:
    parsed = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "1200",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-reset-tokens": "20ms",
        }
    )
    assert parsed is not None and parsed.source == "openai"
    assert parsed.requests is not None and parsed.requests.limit == 1200 and parsed.requests.exhausted
    assert parsed.requests.reset == pytest.approx(360.0)
    assert parsed.tokens is not None and parsed.tokens.reset == pytest.approx(0.02)


def test_anthropic_rfc3339_resets_and_token_dimensions() -> None:
    parsed = parse_rate_limit_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-reset": "2030-03-17T17:46:41Z",
            "anthropic-ratelimit-output-tokens-limit": "8000",
        },
        now=NOW,
    )
    assert parsed is not None and parsed.source == "anthropic"
    assert parsed.requests is not None and parsed.requests.reset == pytest.approx(1.0)
    assert parsed.output_tokens is not None and parsed.output_tokens.limit == 8000


def test_azure_remaining_only_minus_one_ignored_and_retry_after_ms() -> None:
    parsed = parse_rate_limit_headers(
        {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-remaining-tokens": "0", "retry-after-ms": "20"}
    )
    assert parsed is not None and parsed.source == "azure"
    assert parsed.requests is None
    assert parsed.tokens is not None and parsed.tokens.exhausted
    assert parsed.retry_after == pytest.approx(0.02)


def test_malformed_values_are_ignored_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="langchain_ailib_resilience.pacing"):
        parsed = parse_rate_limit_headers(
            {
                "x-ratelimit-limit-requests": "lots",
                "x-ratelimit-reset-requests": "soon",
                "x-ratelimit-limit-tokens": "9",
            }
        )
    assert parsed is not None and parsed.requests is None
    assert "lots" in caplog.text and "soon" in caplog.text
    assert parse_rate_limit_headers(None) is None
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None
