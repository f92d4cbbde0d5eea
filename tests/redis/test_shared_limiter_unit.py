"""SharedRateLimiter logic on virtual time: an in-memory store stands in for Redis (no server needed)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.bench_redis import worst_excess
from langchain_ailib_resilience import FakeClock, RateLimiterConfig, RateLimitExceededError, Registry, ResilientConfig
from langchain_ailib_resilience.state import (
    BucketReply,
    MemoryStateStore,
    SharedRateLimiter,
    StateStoreUnavailableError,
    bucket_key,
)
from langchain_ailib_resilience.state._store import apply_bucket


class FlakyStore:
    """A memory store that can be switched off, counting how often it is asked."""

    name = "flaky"

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryStateStore(clock)
        self.up = True
        self.calls = 0

    def take(self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float) -> BucketReply:
        self.calls += 1
        if not self.up:
            raise StateStoreUnavailableError("connection refused")
        return self.inner.take(key, tokens, rate, burst, *rest, **more)

    async def atake(
        self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float
    ) -> BucketReply:
        return self.take(key, tokens, rate, burst, *rest, **more)


class GatedStore:
    """A memory store whose async answers wait for ``gate``: a take in flight when its caller is cancelled."""

    name = "gated"

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryStateStore(clock)
        self.gate = asyncio.Event()
        self.seen: list[tuple[float, float]] = []  # (tokens asked, wait answered)

    def take(self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float) -> BucketReply:
        return self.inner.take(key, tokens, rate, burst, *rest, **more)

    async def atake(
        self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float
    ) -> BucketReply:
        await self.gate.wait()
        reply = self.inner.take(key, tokens, rate, burst, *rest, **more)
        self.seen.append((tokens, reply.wait))
        return reply


def level(store: MemoryStateStore, key: str = "k", rate: float = 1.0, burst: float = 1.0) -> float:
    return store.take(key, 0, rate, burst).level


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# --- the bucket arithmetic shared with the Lua script ----------------------------------------------------


def test_bucket_starts_full_refills_at_rate_and_caps_at_burst() -> None:
    wait, lvl, stamp = apply_bucket(None, 0.0, 10.0, 3, rate=2.0, burst=5)
    assert (wait, lvl, stamp) == (0.0, 2.0, 10.0)
    wait, lvl, _ = apply_bucket(2.0, 10.0, 11.0, 5, rate=2.0, burst=5)  # 4 tokens after 1 s: 5 need 0.5 s more
    assert wait == pytest.approx(0.5) and lvl == pytest.approx(4.0)
    assert apply_bucket(4.0, 11.0, 100.0, 0, rate=2.0, burst=5)[1] == 5.0  # capped
    assert apply_bucket(4.0, 11.0, 11.0, -3, rate=2.0, burst=5)[1] == 5.0  # a refund is capped too


def test_time_running_backwards_never_refills() -> None:
    wait, lvl, stamp = apply_bucket(0.0, 10.0, 9.0, 1, rate=1.0, burst=1)
    assert wait == pytest.approx(1.0) and lvl == 0.0 and stamp == 10.0


@given(
    st.lists(
        st.tuples(st.floats(0.0, 0.5), st.floats(0.1, 3.0)),
        min_size=1,
        max_size=60,
    )
)
def test_grants_never_exceed_rate_times_window_plus_burst(ops: list[tuple[float, float]]) -> None:
    rate, burst = 4.0, 3
    lvl: float | None = None
    stamp = now = 0.0
    granted: list[float] = []
    for dt, tokens in ops:
        now += dt
        wait, lvl, stamp = apply_bucket(lvl, stamp, now, tokens, rate, burst)
        if wait == 0.0:
            granted.extend([now] * int(tokens))  # whole tokens only: a conservative count
    assert worst_excess(granted, rate, burst) <= 1e-6


# --- waiting ----------------------------------------------------------------------------------------------


def test_head_sleeps_exactly_the_wait_the_store_returns(clock: FakeClock) -> None:
    store = MemoryStateStore(clock)
    limiter = SharedRateLimiter(store, "k", 10, 2, clock=clock)
    limiter.acquire_or_raise()
    limiter.acquire_or_raise()
    assert clock.sleeps == []
    limiter.acquire_or_raise(tokens=2)  # weighted: two tokens at 10/s
    assert clock.sleeps == [pytest.approx(0.2)]
    assert limiter.granted_total == 3
    assert level(store, rate=10, burst=2) == pytest.approx(0.0, abs=1e-6)


def test_two_limiters_on_one_store_share_the_rate(clock: FakeClock) -> None:
    store = MemoryStateStore(clock)
    a = SharedRateLimiter(store, "k", 10, 5, clock=clock)
    b = SharedRateLimiter(store, "k", 10, 5, clock=clock)
    times = []
    for _ in range(50):
        for limiter in (a, b):
            limiter.acquire_or_raise()
            times.append(clock.now())
    assert clock.now() == pytest.approx((100 - 5) / 10)  # one shared bucket, not two
    assert worst_excess(times, 10, 5) <= 1e-6


def test_weighted_amount_above_burst_is_refused(clock: FakeClock) -> None:
    limiter = SharedRateLimiter(MemoryStateStore(clock), "k", 10, 2, clock=clock)
    with pytest.raises(ValueError, match="exceeds burst_size"):
        limiter.acquire_or_raise(tokens=3)


def test_refund_returns_tokens_to_the_store(clock: FakeClock) -> None:
    store = MemoryStateStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 4, clock=clock)
    limiter.acquire_or_raise(tokens=3)
    limiter.refund(2)
    assert level(store, rate=1, burst=4) == pytest.approx(3.0)


async def test_async_waiters_are_served_in_order() -> None:
    clock = FakeClock(auto_advance=False)
    limiter = SharedRateLimiter(MemoryStateStore(clock), "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    order: list[int] = []

    async def call(i: int) -> None:
        await limiter.aacquire_or_raise()
        order.append(i)

    tasks = [asyncio.create_task(call(i)) for i in range(3)]
    await settle()
    assert limiter.waiting == 3
    for _ in range(3):
        clock.advance(1.0)
        await settle()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_cancelled_async_waiter_consumes_nothing() -> None:
    clock = FakeClock(auto_advance=False)
    store = MemoryStateStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())
    second = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert limiter.waiting == 1
    clock.advance(1.0)
    await asyncio.wait_for(second, 1)
    assert limiter.granted_total == 2
    assert level(store) == pytest.approx(0.0)


async def test_cancelled_while_the_store_answers_gives_a_late_grant_back() -> None:
    clock = FakeClock(auto_advance=False)
    store = GatedStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    caller = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    store.gate.set()  # the store grants after the caller left...
    await settle()
    assert store.seen == [(1, 0.0), (-1, 0.0)]  # ...and the token went back
    assert level(store.inner) == pytest.approx(1.0)
    assert limiter.waiting == 0 and limiter.granted_total == 0


# --- timeouts ---------------------------------------------------------------------------------------------


async def test_timeout_is_rejected_up_front_from_the_queue() -> None:
    clock = FakeClock(auto_advance=False)
    store = MemoryStateStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    with pytest.raises(RateLimitExceededError) as info:
        limiter.acquire_or_raise(timeout=0.5)  # one queued ahead: ~2 s
    assert info.value.retry_after == pytest.approx(2.0)
    clock.advance(1.0)
    await head


def test_head_rejected_when_the_store_wait_exceeds_the_timeout(clock: FakeClock) -> None:
    store = MemoryStateStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    limiter.acquire_or_raise()
    with pytest.raises(RateLimitExceededError) as info:
        limiter.acquire_or_raise(timeout=0.5)
    assert info.value.retry_after == pytest.approx(1.0)
    assert clock.sleeps == [] and limiter.waiting == 0
    assert not limiter.try_acquire()  # nothing was taken, nothing is free yet


class NonReservingStore(MemoryStateStore):
    """A store written before reservations: it takes or tells the wait, never reserves."""

    def take(
        self, key: str, tokens: float, rate: float, burst: float, pause: float = 0.0, *_: float, **__: float
    ) -> BucketReply:
        return super().take(key, tokens, rate, burst, pause)


async def test_queued_waiter_leaves_at_its_deadline_when_other_processes_take_the_tokens() -> None:
    # (With a store that reserves, the head holds its token and a newcomer is told at once: test_shared_reservations.)
    clock = FakeClock(auto_advance=False)
    store = NonReservingStore(clock)
    here = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    elsewhere = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await here.aacquire_or_raise()
    head = asyncio.create_task(here.aacquire_or_raise())
    queued = asyncio.create_task(here.aacquire_or_raise(timeout=2.5))  # estimate 2 s: accepted
    await settle()
    for _ in range(2):  # another process takes each token the moment it refills
        clock.advance(1.0)
        assert elsewhere.try_acquire()
        await settle()
    clock.advance(0.5)
    await settle()
    with pytest.raises(RateLimitExceededError):
        await queued
    assert clock.now() == pytest.approx(2.5)
    clock.advance(0.5)
    await asyncio.wait_for(head, 1)


def test_try_acquire_never_jumps_the_local_queue() -> None:
    clock = FakeClock(auto_advance=False)
    limiter = SharedRateLimiter(MemoryStateStore(clock), "k", 1, 2, clock=clock)
    limiter.acquire_or_raise(tokens=2)

    async def scenario() -> None:
        head = asyncio.create_task(limiter.aacquire_or_raise(tokens=2))
        await settle()
        clock.advance(1.0)  # one token free, head needs two
        assert not limiter.try_acquire()
        assert not await limiter.atry_acquire()
        clock.advance(1.0)
        await head

    asyncio.run(scenario())


# --- falling back ---------------------------------------------------------------------------------------


def test_store_down_falls_back_to_local_limits_then_recovers(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(clock)
    limiter = SharedRateLimiter(store, "k", 10, 2, clock=clock, retry_backoff=1.0, max_retry_backoff=4.0)
    limiter.acquire_or_raise()
    assert limiter.backend == "flaky"
    store.up = False
    calls_before = store.calls
    times = []
    with caplog.at_level(logging.INFO, logger="langchain_ailib_resilience.state"):
        for _ in range(40):
            limiter.acquire_or_raise(timeout=None)
            times.append(clock.now())
        assert limiter.backend == "local-fallback"
        assert limiter.granted_total == 41  # none dropped
        assert worst_excess(times, 10, 2) <= 1e-6  # local limit: same rate and burst
        assert store.calls - calls_before <= 4  # asked again after 1, 2, 4 s of back-off, not per call
        assert [r.levelno for r in caplog.records] == [logging.WARNING]  # warned once
        store.up = True
        clock.advance(4.0)
        limiter.acquire_or_raise()
    assert limiter.backend == "flaky"
    assert "answers again" in caplog.records[-1].getMessage()
    assert limiter.fallbacks_total == 1


async def test_async_callers_fall_back_too(clock: FakeClock) -> None:
    store = FlakyStore(clock)
    store.up = False
    limiter = SharedRateLimiter(store, "k", 10, 2, clock=clock)
    await asyncio.gather(*(limiter.aacquire_or_raise() for _ in range(10)))
    assert limiter.granted_total == 10 and limiter.backend == "local-fallback"
    assert limiter.remaining >= 0.0


def test_memory_url_builds_a_shared_limiter_through_the_registry(clock: FakeClock) -> None:
    config = ResilientConfig(state_url="memory://", rate_limiter=RateLimiterConfig(requests_per_second=5, burst_size=3))
    state = Registry().get("openai/gpt-4o", config, clock)
    assert isinstance(state.limiter, SharedRateLimiter)
    assert state.limiter.key == bucket_key("openai/gpt-4o") == "ailib:rl:{openai/gpt-4o}"
    assert state.state_backend == "memory" and state.signals().state_backend == "memory"
    assert (state.limiter.rate, state.limiter.burst) == (5.0, 3)
