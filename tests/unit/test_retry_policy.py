"""Retry decisions: codes, attempt counts, delay bounds, Retry-After, deadline and budget; spec res-001..004."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_ailib_resilience import FakeClock, ResilienceError, RetryConfig, StandardErrorCode
from langchain_ailib_resilience.config import RetryBudgetConfig
from langchain_ailib_resilience.errors.exceptions import CircuitOpenError
from langchain_ailib_resilience.policies.retry import RetryBudget, backoff_delay, decide

CASES = Path(__file__).parent.parent / "conformance" / "cases" / "retry-policy.yaml"


def error(code: str, retry_after: float | None = None) -> ResilienceError:
    return ResilienceError("x", code=code, retry_after=retry_after)


def spec_cases() -> list[dict]:
    return [case for case in yaml.safe_load_all(CASES.read_text()) if case]


def spec_config(policy: dict) -> RetryConfig:
    # Only what the case's policy states; the rest is our default, so res-001's window checks our defaults.
    given = {"max_retries": policy["max_retries"], "retry_on": policy["retry_on_error_code"]}
    if "min_delay_ms" in policy:
        given["initial_delay"] = policy["min_delay_ms"] / 1000
    if "max_delay_ms" in policy:
        given["max_delay"] = policy["max_delay_ms"] / 1000
    return RetryConfig(**given)


@pytest.mark.parametrize("case", spec_cases(), ids=lambda c: c["id"])
def test_ai_protocol_retry_decisions(case: dict) -> None:
    policy, attempt = case["input"]["retry_policy"], case["input"]["attempt"]
    config = spec_config(policy)
    code = StandardErrorCode.from_code(case["input"]["error"]["error_code"])
    assert (code.error_name, code.retryable) == (
        case["input"]["error"]["error_name"],
        case["input"]["error"]["retryable"],
    )
    decisions = [
        decide(config, error(code.value), attempt, now=0, deadline=None, rng=random.Random(seed)) for seed in range(200)
    ]
    assert {d.retry for d in decisions} == {case["expected"]["should_retry"]}
    if case["expected"]["should_retry"]:
        bounds = case["expected"]["delay_ms"]
        delays_ms = sorted(d.delay * 1000 for d in decisions)
        assert bounds["min"] <= delays_ms[0] and delays_ms[-1] <= bounds["max"], (delays_ms[0], delays_ms[-1])
        assert delays_ms[0] < delays_ms[-1]  # jittered: the seeds spread the retries out


@pytest.mark.parametrize("case", spec_cases(), ids=lambda c: c["id"])
def test_ai_protocol_retry_on_error_code(case: dict) -> None:
    # The policy's retry_on_error_code decides, per standard code, whether the first failure is retried.
    policy = case["input"]["retry_policy"]
    config = spec_config(policy)
    retried = {
        code.error_name
        for code in StandardErrorCode
        if decide(config, error(code.value), 1, now=0, deadline=None).retry
    }
    assert retried == set(policy["retry_on_error_code"])


def test_retry_on_narrows_but_never_widens() -> None:
    config = RetryConfig(retry_on=["rate_limited", "quota_exhausted"])
    assert decide(config, error("E2001"), 1, now=0, deadline=None).retry
    assert decide(config, error("E3001"), 1, now=0, deadline=None).reason == "not_retryable"
    assert not decide(config, error("E2002"), 1, now=0, deadline=None).retry  # a spent quota stays final
    assert decide(RetryConfig(), error("E3003"), 1, now=0, deadline=None).retry  # default: every retryable code


def test_retry_on_refuses_unknown_codes() -> None:
    with pytest.raises(ValueError, match="nope"):
        RetryConfig(retry_on=["nope"])


@pytest.mark.parametrize("code", [c for c in StandardErrorCode if not c.retryable])
def test_non_retryable_codes_are_never_retried(code: StandardErrorCode) -> None:
    assert not decide(RetryConfig(), error(code.value), 1, now=0, deadline=None).retry


def test_quota_429_is_not_retried_but_rate_limit_is() -> None:
    assert not decide(RetryConfig(), error("E2002"), 1, now=0, deadline=None).retry
    assert decide(RetryConfig(), error("E2001"), 1, now=0, deadline=None).retry


def test_local_rejections_are_not_retried() -> None:
    decision = decide(RetryConfig(), CircuitOpenError(target="t"), 1, now=0, deadline=None)
    assert (decision.retry, decision.reason) == (False, "local_rejection")


@settings(max_examples=500)
@given(
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    initial=st.floats(min_value=0, max_value=10),
    spread=st.floats(min_value=0, max_value=100),
    multiplier=st.floats(min_value=1, max_value=10),
    retry_number=st.integers(min_value=1, max_value=10_000),
    previous=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    seed=st.integers(),
)
def test_property_every_delay_within_initial_and_max(
    jitter: str, initial: float, spread: float, multiplier: float, retry_number: int, previous: float | None, seed: int
) -> None:
    config = RetryConfig(
        initial_delay=initial, max_delay=initial + spread + 1e-3, backoff_multiplier=multiplier, jitter=jitter
    )
    delay = backoff_delay(config, retry_number, previous, random.Random(seed))
    assert config.initial_delay <= delay <= config.max_delay


def test_no_jitter_is_plain_exponential() -> None:
    config = RetryConfig(initial_delay=1, max_delay=10, jitter="none")
    assert [backoff_delay(config, n) for n in range(1, 6)] == [1, 2, 4, 8, 10]


@settings(max_examples=200)
@given(retry_after=st.floats(min_value=0, max_value=10_000), attempt=st.integers(min_value=1, max_value=3))
def test_property_retry_after_is_honoured_floored_and_capped(retry_after: float, attempt: int) -> None:
    config = RetryConfig(initial_delay=1, max_delay=30, max_retry_after=60)
    decision = decide(config, error("E2001", retry_after), attempt, now=0, deadline=None)
    if retry_after > 60:
        assert (decision.retry, decision.reason) == (False, "retry_after_too_long")
    else:
        assert decision.retry
        assert decision.delay == pytest.approx(max(1.0, retry_after))


def test_long_retry_after_can_be_capped_instead() -> None:
    config = RetryConfig(max_retry_after=60, on_long_retry_after="cap")
    decision = decide(config, error("E2001", 3600), 1, now=0, deadline=None)
    assert decision.retry
    assert decision.delay == 60


def test_retry_after_ignored_when_asked() -> None:
    config = RetryConfig(initial_delay=1, max_delay=2, respect_retry_after=False, jitter="none")
    assert decide(config, error("E2001", 3600), 1, now=0, deadline=None).delay == 1


def test_never_sleeps_past_the_deadline() -> None:
    config = RetryConfig(initial_delay=5, max_delay=5, jitter="none")
    decision = decide(config, error("E3001"), 1, now=100, deadline=104)
    assert (decision.retry, decision.reason) == (False, "deadline")
    assert decide(config, error("E3001"), 1, now=100, deadline=106).retry


def test_attempts_never_exceed_max_retries() -> None:
    config = RetryConfig(max_retries=2)
    assert [decide(config, error("E3002"), n, now=0, deadline=None).retry for n in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]


def test_retry_budget_caps_retries_to_a_share_of_requests(clock: FakeClock) -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_retries_per_second=0.5, window_seconds=10), clock)
    for _ in range(100):
        budget.record_request()
    allowed = sum(budget.try_spend() for _ in range(100))
    assert allowed == 25  # 0.5/s x 10 s + 20% of 100
    clock.advance(10.5)
    assert budget.retries_in_window == 0
    assert sum(budget.try_spend() for _ in range(10)) == 5  # only the floor: no recent requests


def test_budget_refusal_is_reported(clock: FakeClock) -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0, min_retries_per_second=0.1, window_seconds=10), clock)
    assert decide(RetryConfig(), error("E3001"), 1, now=0, deadline=None, budget=budget).retry
    decision = decide(RetryConfig(), error("E3001"), 1, now=0, deadline=None, budget=budget)
    assert (decision.retry, decision.reason) == (False, "budget")
