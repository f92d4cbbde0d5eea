"""Spent budgets and quotas: classified as E2002 (never retried, falls back) and, with a quota cooldown, the
target's circuit held open for it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import litellm
import pytest

from langchain_ailib_resilience import CircuitBreakerConfig, CircuitOpenError, FakeClock, StandardErrorCode
from langchain_ailib_resilience.errors.classify import classify_error, classify_http
from langchain_ailib_resilience.policies.circuit_breaker import CircuitBreaker, CircuitState

C = StandardErrorCode

ANTHROPIC_USAGE_LIMITS = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "You have reached your specified API usage limits. You will regain access on 2026-01-01 at "
        "00:00 UTC.",
    },
}
OPENROUTER_402 = {
    "error": {
        "message": "Insufficient credits. This account never purchased credits. Make sure your key is on the "
        "correct account or org, and if so, purchase more at https://openrouter.ai/settings/credits",
        "code": 402,
    }
}
OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
GEMINI_PER_DAY = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests,"
        " limit: 250",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
            }
        ],
    }
}


@pytest.mark.parametrize(
    ("status", "body", "provider"),
    [
        (400, ANTHROPIC_USAGE_LIMITS, "anthropic"),
        (402, OPENROUTER_402, "openrouter"),
        (429, OPENAI_QUOTA, "openai"),
        (429, GEMINI_PER_DAY, "gemini"),
    ],
    ids=["anthropic-usage-limits", "openrouter-402", "openai-insufficient-quota", "gemini-per-day"],
)
def test_spent_quotas_are_e2002_not_retried_but_fall_back(status: int, body: dict[str, Any], provider: str) -> None:
    error = classify_http(status, body, provider=provider)
    assert error.code is C.QUOTA_EXHAUSTED
    assert not error.retryable
    assert error.fallbackable


def _response(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1"), json=body)


def test_litellm_anthropic_usage_limits_bad_request_is_quota() -> None:
    exc = litellm.BadRequestError(
        message="AnthropicException - " + json.dumps(ANTHROPIC_USAGE_LIMITS),
        model="claude-x",
        llm_provider="anthropic",
        response=_response(400, ANTHROPIC_USAGE_LIMITS),
    )
    assert classify_error(exc).code is C.QUOTA_EXHAUSTED


def test_anthropic_prompt_too_long_is_still_request_too_large() -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 1 > 0"}}
    assert classify_http(400, body, provider="anthropic").code is C.REQUEST_TOO_LARGE


def test_litellm_openrouter_402_is_quota() -> None:
    exc = litellm.APIError(
        status_code=402,
        message="OpenrouterException - " + json.dumps(OPENROUTER_402),
        model="x",
        llm_provider="openrouter",
    )
    assert classify_error(exc).code is C.QUOTA_EXHAUSTED


# --- the breaker's quota cooldown ---------------------------------------------------------------------------


def test_quota_does_not_open_the_circuit_without_a_quota_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=clock)
    breaker.record_failure(breaker.admit(), C.QUOTA_EXHAUSTED)
    assert breaker.state is CircuitState.CLOSED


def test_quota_holds_the_circuit_open_for_the_quota_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=5, cooldown_seconds=10, quota_cooldown_seconds=3600, clock=clock)
    breaker.record_failure(breaker.admit(), C.QUOTA_EXHAUSTED)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        breaker.admit()
    assert caught.value.retry_after == pytest.approx(3600)
    clock.advance(3599)
    assert breaker.state is CircuitState.OPEN
    clock.advance(1)
    assert breaker.state is CircuitState.HALF_OPEN
    probe = breaker.admit()
    breaker.record_failure(probe, C.QUOTA_EXHAUSTED)  # still spent: out for another quota cooldown
    assert breaker.cooldown_remaining == pytest.approx(3600)
    clock.advance(3600)
    breaker.record_success(breaker.admit())
    assert breaker.state is CircuitState.CLOSED
    # Back to ordinary cooldowns for ordinary failures.
    for _ in range(5):
        breaker.record_failure(breaker.admit(), C.SERVER_ERROR)
    assert breaker.cooldown_remaining == pytest.approx(10)


def test_quota_lengthens_a_short_open_and_never_shortens_a_long_one(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=10, quota_cooldown_seconds=60, clock=clock)
    permit = breaker.admit()
    late = breaker.admit()
    breaker.record_failure(permit, C.SERVER_ERROR)
    assert breaker.cooldown_remaining == pytest.approx(10)
    breaker.record_failure(late, C.QUOTA_EXHAUSTED)  # admitted before the opening: a quota still counts
    assert breaker.cooldown_remaining == pytest.approx(60)
    clock.advance(30)
    breaker.force_open()
    breaker.record_failure(breaker._closed_permit, C.QUOTA_EXHAUSTED)
    assert breaker.cooldown_remaining == float("inf")


def test_quota_cooldown_from_config_and_validation(clock: FakeClock) -> None:
    config = CircuitBreakerConfig(quota_cooldown_seconds=120)
    breaker = CircuitBreaker.from_config(config, clock=clock)
    breaker.record_failure(breaker.admit(), C.QUOTA_EXHAUSTED)
    assert breaker.cooldown_remaining == pytest.approx(120)
    with pytest.raises(ValueError, match="quota_cooldown_seconds"):
        CircuitBreakerConfig(quota_cooldown_seconds=0)


def test_disabled_breaker_ignores_quota(clock: FakeClock) -> None:
    breaker = CircuitBreaker.from_config(CircuitBreakerConfig(enabled=False, quota_cooldown_seconds=60), clock=clock)
    breaker.record_failure(breaker.admit(), C.QUOTA_EXHAUSTED)
    assert breaker.state is CircuitState.CLOSED
