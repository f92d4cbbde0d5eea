"""Token limits: reserve an estimate before a call, reconcile with reported usage after, refund on failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_ailib_resilience import (
    Candidate,
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience import token_estimate as tk
from langchain_ailib_resilience.policies.rate_limiter import RateLimiter
from langchain_ailib_resilience.policies.tokens import Reservation, TokenCost, TokenLimits
from langchain_ailib_resilience.preflight import PreflightChecker
from langchain_ailib_resilience.registry import Registry
from langchain_ailib_resilience.state import MemoryStateStore, SharedRateLimiter


class Answer:
    """A LiteLLM-shaped answer reporting its usage."""

    def __init__(self, prompt: int, completion: int) -> None:
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion}


def limits(clock: FakeClock, **per_minute: float) -> TokenLimits:
    buckets = {dim: RateLimiter(limit / 60, int(limit / 60), clock=clock) for dim, limit in per_minute.items()}
    return TokenLimits(buckets)  # type: ignore[arg-type]


def test_the_estimate_counts_input_and_takes_max_tokens_for_output() -> None:
    messages = [{"role": "user", "content": "hello there " * 20}]
    cost = tk.estimate_cost("openai/gpt-4o", messages, {"max_tokens": 100})
    assert cost.output_tokens == 100
    assert 40 <= cost.input_tokens <= 60  # LiteLLM's token_counter: ~2 tokens a repeat, plus the message frame
    assert tk.estimate_cost(None, "hi", {}).output_tokens == tk.DEFAULT_OUTPUT_TOKENS
    assert tk.output_budget({"max_completion_tokens": 7, "max_tokens": 9}) == 7


def test_without_litellm_or_tiktoken_it_is_one_token_per_four_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tk, "_litellm_counter", lambda: None)
    monkeypatch.setattr(tk, "_tiktoken_encoding", lambda: None)
    assert tk.count_input_tokens("m", [{"role": "user", "content": "x" * 40}]) == 10 + 3


def test_reconcile_sets_input_and_output_to_usage_and_charges_total_at_least_the_reservation() -> None:
    clock = FakeClock()
    buckets = limits(clock, tokens=60_000, input_tokens=60_000, output_tokens=60_000)  # 1000 each
    held = buckets.try_acquire(TokenCost(10, 100))
    assert held is not None
    buckets.reconcile(held, TokenCost(12, 30))
    left = buckets.remaining()
    assert left["tokens"] == pytest.approx(1000 - 110)  # OpenAI/Azure count max_tokens at arrival
    assert left["input_tokens"] == pytest.approx(1000 - 12)
    assert left["output_tokens"] == pytest.approx(1000 - 30)  # Anthropic adjusts OTPM to the output used


def test_a_call_estimated_above_the_bucket_takes_the_whole_bucket() -> None:
    clock = FakeClock()
    buckets = limits(clock, tokens=6_000)  # bucket 100
    held = buckets.try_acquire(TokenCost(500, 500))
    assert held == Reservation((("tokens", 100.0),))


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 2_000), st.floats(0, 2_000), st.floats(0, 5_000), st.floats(0, 5_000), st.floats(0, 3)),
        max_size=40,
    )
)
def test_reconciliation_never_leaves_a_negative_bucket(steps: list[tuple[float, ...]]) -> None:
    clock = FakeClock()
    buckets = limits(clock, tokens=60_000, input_tokens=30_000, output_tokens=30_000)
    for est_in, est_out, used_in, used_out, later in steps:
        held = buckets.try_acquire(TokenCost(est_in, est_out))
        clock.advance(later)
        if held is not None:
            buckets.reconcile(held, TokenCost(used_in, used_out))
        for dimension, bucket in buckets.buckets.items():
            assert bucket.remaining >= 0.0, dimension
            assert bucket.remaining <= bucket.burst


def test_a_failed_or_cancelled_call_gets_its_reservation_back() -> None:
    clock = FakeClock()
    config = ResilientConfig(rate_limiter=RateLimiterConfig(tokens_per_minute=60_000))
    checker = PreflightChecker(config, registry=Registry(), clock=clock)
    state = checker.state("t")
    assert state.token_limits is not None
    cost = lambda: TokenCost(100, 200)  # noqa: E731
    ticket = checker.check(state, cost=cost)
    assert state.token_limits.remaining()["tokens"] == pytest.approx(700)
    ticket.failure(ResilienceError("boom", code="E3001", status_code=500))
    assert state.token_limits.remaining()["tokens"] == pytest.approx(1000)
    ticket = checker.check(state, cost=cost)
    ticket.release()
    assert state.token_limits.remaining()["tokens"] == pytest.approx(1000)
    ticket = checker.check(state, cost=cost)
    ticket.success(Answer(50, 20))  # usage below the reservation: the total keeps the reservation
    assert state.token_limits.remaining()["tokens"] == pytest.approx(700)


async def test_callers_are_paced_by_their_tokens_through_the_executor() -> None:
    clock = FakeClock()
    config = ResilientConfig(
        retry=RetryConfig(max_retries=0), rate_limiter=RateLimiterConfig(tokens_per_minute=6_000, max_wait=None)
    )  # 100 tokens/s, bucket 100
    executor = ResilientExecutor(config, clock=clock, registry=Registry())
    sent: list[float] = []

    async def call(_ctx: Any) -> Answer:
        sent.append(clock.now())
        return Answer(10, 40)

    cost = lambda: TokenCost(10, 40)  # noqa: E731  (50 a call: two a second)
    await asyncio.gather(*(executor.run([Candidate("t", call, cost=cost)]) for _ in range(10)))
    assert sent[-1] == pytest.approx(4.0)  # 2 from the bucket at once, then one every 0.5 s
    assert executor.state("t").token_limits is not None


async def test_a_target_without_token_limits_never_estimates() -> None:
    clock = FakeClock()
    executor = ResilientExecutor(ResilientConfig(), clock=clock, registry=Registry())

    def never() -> TokenCost:
        raise AssertionError("estimated without a token limit")

    async def call(_ctx: Any) -> str:
        return "ok"

    assert await executor.run([Candidate("t", call, cost=never)]) == "ok"


def test_token_buckets_are_shared_through_the_store_and_never_go_negative() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock)
    here = TokenLimits({"tokens": SharedRateLimiter(store, "tk", 100, 100, clock=clock)})
    there = TokenLimits({"tokens": SharedRateLimiter(store, "tk", 100, 100, clock=clock)})
    held = here.try_acquire(TokenCost(30, 30))
    assert held is not None
    assert there.try_acquire(TokenCost(30, 30)) is None  # 40 left in the shared bucket
    here.reconcile(held, TokenCost(200, 300))  # far beyond what is left: the bucket is emptied, not overdrawn
    assert store.take("tk", 0, 100, 100).level == 0.0
