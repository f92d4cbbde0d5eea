"""Target-wide pause: one 429/503 with Retry-After holds every caller of the target, on the FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from langchain_ailib_resilience import (
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.errors.exceptions import RateLimitExceededError
from langchain_ailib_resilience.policies.pause import PauseGate, pause_asked
from langchain_ailib_resilience.preflight import PreflightChecker
from langchain_ailib_resilience.registry import Registry
from langchain_ailib_resilience.state import MemoryStateStore

RETRY = RetryConfig(max_retries=3, initial_delay=0.01, max_delay=0.1, jitter="none")


def too_many(retry_after: float | None = 2.0, status: int = 429) -> ResilienceError:
    code = "E2001" if status == 429 else "E3002"
    return ResilienceError("slow down", code=code, retry_after=retry_after, status_code=status)


class Provider:
    """Answers 429 (retry-after 2 s) to its first request, then records when each request arrived."""

    def __init__(self, clock: FakeClock, first: BaseException | None) -> None:
        self.clock = clock
        self.first = first
        self.sent: list[float] = []

    async def __call__(self) -> str:
        self.sent.append(self.clock.now())
        if self.first is not None:
            first, self.first = self.first, None
            raise first
        return "ok"


async def sixty_callers(config: ResilientConfig, clock: FakeClock, first: BaseException | None) -> Provider:
    executor = ResilientExecutor(config, clock=clock, registry=Registry())
    provider = Provider(clock, first)
    first_call = asyncio.ensure_future(executor.execute(provider, target="openai/gpt-4o"))
    await clock.asleep(0.001)  # the 429 is in

    async def later(i: int) -> str:
        await clock.asleep(0.01 * i)
        return await executor.execute(provider, target="openai/gpt-4o")

    results = await asyncio.gather(first_call, *(later(i) for i in range(59)))
    assert results == ["ok"] * 60
    return provider


@pytest.mark.parametrize(
    "limit",
    [RateLimiterConfig(), RateLimiterConfig(requests_per_second=100, burst_size=10)],
    ids=["no-rate-configured", "rate-configured"],
)
async def test_one_429_with_retry_after_holds_all_sixty_callers(limit: RateLimiterConfig) -> None:
    clock = FakeClock()
    provider = await sixty_callers(ResilientConfig(retry=RETRY, rate_limiter=limit), clock, too_many(2.0))
    assert provider.sent[0] == 0.0
    assert len(provider.sent) == 61  # 60 answers and the one 429
    assert min(provider.sent[1:]) >= 2.0 - 1e-9


async def test_a_503_with_retry_after_pauses_too() -> None:
    clock = FakeClock()
    provider = await sixty_callers(ResilientConfig(retry=RETRY), clock, too_many(1.5, status=503))
    assert min(provider.sent[1:]) >= 1.5 - 1e-9


async def test_the_pause_can_be_turned_off() -> None:
    clock = FakeClock()
    config = ResilientConfig(retry=RETRY, rate_limiter=RateLimiterConfig(pause_on_retry_after=False))
    provider = await sixty_callers(config, clock, too_many(2.0))
    assert min(provider.sent[1:]) < 1.0  # the others went on sending; only the caller that got it waited


async def test_a_429_without_retry_after_does_not_pause_anyone() -> None:
    clock = FakeClock()
    provider = await sixty_callers(ResilientConfig(retry=RETRY), clock, too_many(None))
    assert min(provider.sent[1:]) < 0.1


def test_what_pauses_and_what_does_not() -> None:
    assert pause_asked(too_many(2.0)) == 2.0
    assert pause_asked(too_many(1e9)) == 3600.0  # capped: a misread header must not stop a target for days
    assert pause_asked(ResilienceError("bad", code="E1001", retry_after=3.0, status_code=400)) == 0.0
    assert pause_asked(RateLimitExceededError(retry_after=3.0)) == 0.0  # our own limiter: nothing was sent
    assert pause_asked(ResilienceError("quota", code="E2002", retry_after=3.0)) == 0.0


def test_sync_callers_wait_out_the_pause_and_a_long_one_is_refused_at_once() -> None:
    clock = FakeClock()
    checker = PreflightChecker(
        ResilientConfig(rate_limiter=RateLimiterConfig(max_wait=5.0)), registry=Registry(), clock=clock
    )
    ticket = checker.check("t")
    ticket.failure(too_many(2.0))
    assert checker.try_check(checker.state("t")) is None  # the fast path never jumps a pause
    checker.check("t").success()
    assert clock.now() == pytest.approx(2.0)
    checker.check("t").failure(too_many(30.0))
    with pytest.raises(RateLimitExceededError) as caught:
        checker.check("t")  # 30 s > max_wait: refused at once, so the call can fall back
    assert caught.value.retry_after == pytest.approx(30.0)
    assert clock.now() == pytest.approx(2.0)


def test_no_pause_costs_nothing_but_a_read() -> None:
    clock = FakeClock()
    gate = PauseGate(clock)
    assert gate.remaining() == 0.0
    gate.pause(1.0)
    gate.pause(0.5)  # a shorter pause keeps the longer one
    assert gate.remaining() == pytest.approx(1.0)
    clock.advance(1.0)
    assert gate.remaining() == 0.0
    assert gate._until == 0.0  # back on the one-float fast path


def test_the_pause_reaches_other_processes_through_the_store() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock)
    here, there = PauseGate(clock, store, "k"), PauseGate(clock, store, "k")
    there.sync()
    here.pause(2.0)
    assert there.remaining() == 0.0  # not read yet: at most every `refresh` seconds
    clock.advance(0.25)
    there.sync()
    assert there.remaining() == pytest.approx(1.75)


async def test_the_shared_pause_is_raised_and_read_without_blocking_the_loop() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock)
    here, there = PauseGate(clock, store, "k"), PauseGate(clock, store, "k")
    here.pause(2.0)
    await asyncio.sleep(0)  # the store is told by a task
    await there.async_sync()
    assert there.remaining() == pytest.approx(2.0)
