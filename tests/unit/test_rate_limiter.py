"""Token bucket: burst and rate, FIFO fairness, up-front timeouts, weighted acquire, cancellation, threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.rate_limiters import BaseRateLimiter

from langchain_ailib_resilience import FakeClock, RateLimiter, RateLimitExceededError


def assert_window_bound(stamps: list[float], rate: float, burst: int) -> None:
    """Over every window [t_i, t_j], grants <= rate * (t_j - t_i) + burst (the token-bucket invariant)."""
    stamps = sorted(stamps)
    for i in range(len(stamps)):
        for j in range(i, len(stamps)):
            granted = j - i + 1
            assert granted <= rate * (stamps[j] - stamps[i]) + burst + 1e-6, (i, j, stamps[i], stamps[j])


def test_burst_then_refill(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=10, burst_size=5, clock=clock)
    assert [limiter.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.1)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    clock.advance(10)
    assert limiter.remaining == pytest.approx(5)


def test_default_burst_is_one_second_of_requests() -> None:
    assert RateLimiter(requests_per_second=10).burst_size == 10
    assert RateLimiter(requests_per_second=0.5).burst_size == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"requests_per_second": -1}, "requests_per_second"),
        ({"requests_per_second": float("nan")}, "requests_per_second"),
        ({"requests_per_second": 1, "burst_size": 0}, "burst_size"),
        ({"requests_per_second": 1, "max_wait": -1}, "max_wait"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


def test_blocking_acquire_sleeps_exactly_until_the_token(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=4, burst_size=1, clock=clock)
    limiter.acquire()
    limiter.acquire()
    assert clock.now() == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)]


def test_timeout_is_decided_up_front_with_the_wait_it_would_need(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=2, burst_size=1, clock=clock)
    assert limiter.try_acquire()
    with pytest.raises(RateLimitExceededError) as info:
        limiter.acquire_or_raise(timeout=0.1)
    assert info.value.retry_after == pytest.approx(0.5)
    assert info.value.local and info.value.fallbackable
    assert "retry in 0.500s" in str(info.value)
    assert clock.now() == 0.0  # rejected without waiting
    assert limiter.acquire(timeout=0.1) is False
    assert limiter.acquire(timeout=1.0) is True


def test_weighted_acquire(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=10, burst_size=10, clock=clock)
    assert limiter.try_acquire(tokens=8)
    assert not limiter.try_acquire(tokens=3)
    limiter.acquire(tokens=3)
    assert clock.now() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="exceeds burst_size=10"):
        limiter.acquire(tokens=11)
    with pytest.raises(ValueError, match="positive"):
        limiter.acquire(tokens=0)


def test_is_a_langchain_rate_limiter(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=2, burst_size=1, clock=clock)
    assert isinstance(limiter, BaseRateLimiter)
    model = GenericFakeChatModel(messages=iter([AIMessage("a"), AIMessage("b")]), rate_limiter=limiter)
    assert model.invoke("hi").content == "a"
    assert model.invoke("hi").content == "b"
    assert clock.now() == pytest.approx(0.5)  # the second call waited for its token


async def test_async_fifo_fairness_and_rate(clock: FakeClock) -> None:
    """50 req/s, burst 1, 200 tasks: served in arrival order at the exact rate."""
    limiter = RateLimiter(requests_per_second=50, burst_size=1, clock=clock)
    order: list[int] = []
    stamps: list[float] = []

    async def worker(i: int) -> None:
        await limiter.aacquire()
        order.append(i)
        stamps.append(clock.now())

    await asyncio.gather(*(worker(i) for i in range(200)))
    assert order == list(range(200))
    assert stamps[-1] == pytest.approx(199 / 50)
    assert len(stamps) / (stamps[-1] + 1 / 50) >= 49.0
    assert_window_bound(stamps[:60], 50, 1)


async def test_try_acquire_never_jumps_the_queue(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=1, burst_size=1, clock=clock)
    assert limiter.try_acquire()
    waiter = asyncio.ensure_future(limiter.aacquire())
    await asyncio.sleep(0)
    assert limiter.waiting == 1
    clock.advance(1.0)  # a token is free, but the queued waiter owns it
    assert not limiter.try_acquire()
    assert await waiter


async def test_thousand_cancellations_consume_nothing(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=10, burst_size=10, clock=clock)
    for _ in range(10):
        assert limiter.try_acquire()
    clock.auto_advance = False  # keep time still while the waiters queue up
    tasks = [asyncio.ensure_future(limiter.aacquire()) for _ in range(1000)]
    await asyncio.sleep(0)
    assert limiter.waiting == 1000
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert limiter.waiting == 0
    clock.advance(1.0)
    # Every token the cancelled waiters might have held is back: the full burst is free again.
    assert limiter.remaining == pytest.approx(10)
    assert sum(limiter.try_acquire() for _ in range(11)) == 10


async def test_cancelled_head_hands_its_place_on(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=1, burst_size=1, clock=clock)
    clock.auto_advance = False
    assert limiter.try_acquire()
    head = asyncio.ensure_future(limiter.aacquire())
    second = asyncio.ensure_future(limiter.aacquire())
    await asyncio.sleep(0)
    head.cancel()
    await asyncio.sleep(0)
    clock.advance(1.0)
    assert await asyncio.wait_for(second, 1) is True
    assert limiter.waiting == 0


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=100),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=80),
    weights=st.lists(st.integers(min_value=1, max_value=3), min_size=80, max_size=80),
)
def test_property_grants_never_exceed_rate_window_plus_burst(
    rate: float, burst: int, gaps: list[float], weights: list[int]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_second=rate, burst_size=burst, clock=clock)
    stamps: list[float] = []
    for gap, weight in zip(gaps, weights, strict=False):
        clock.advance(gap)
        weight = min(weight, burst)
        if limiter.try_acquire(weight):
            stamps.extend([clock.now()] * weight)
    assert_window_bound(stamps, rate, burst)


def test_threads_share_one_limiter(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=20, burst_size=2, clock=clock)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(clock.now())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert len(stamps) == 80
    assert limiter.waiting == 0
    assert_window_bound(stamps, 20, 2)


def test_event_loops_in_threads_share_one_limiter(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=100, burst_size=5, clock=clock)
    counts: list[int] = []

    def loop_worker() -> None:
        async def main() -> int:
            done = 0
            for _ in range(20):
                await limiter.aacquire()
                done += 1
            return done

        counts.append(asyncio.run(main()))

    threads = [threading.Thread(target=loop_worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert counts == [20, 20, 20]
    assert limiter.waiting == 0
