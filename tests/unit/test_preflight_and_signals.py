"""PreflightChecker reserves all or nothing; SignalsSnapshot reads live per-target state."""

from __future__ import annotations

import asyncio

import pytest

from langchain_ailib_resilience import (
    BackpressureConfig,
    BackpressureError,
    CircuitBreakerConfig,
    CircuitOpenError,
    FakeClock,
    PreflightChecker,
    RateLimiterConfig,
    RateLimitExceededError,
    ResilientConfig,
    StandardErrorCode,
)


def checker(clock: FakeClock, **config: object) -> PreflightChecker:
    return PreflightChecker(ResilientConfig(**config), clock=clock)  # type: ignore[arg-type]


def test_ticket_settles_once_and_frees_the_permit(clock: FakeClock) -> None:
    pf = checker(clock, backpressure=BackpressureConfig(max_inflight=1))
    with pf.check("t") as ticket:
        assert pf.state("t").backpressure.inflight == 1  # type: ignore[union-attr]
    assert ticket.settled
    ticket.failure(StandardErrorCode.SERVER_ERROR)  # a second settle is ignored
    assert pf.state("t").breaker.failure_count == 0
    assert pf.state("t").backpressure.inflight == 0  # type: ignore[union-attr]


def test_failed_inflight_check_refunds_the_rate_token(clock: FakeClock) -> None:
    pf = checker(
        clock,
        rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=2),
        backpressure=BackpressureConfig(max_inflight=1, max_wait=0),
    )
    held = pf.check("t")
    with pytest.raises(BackpressureError):
        pf.check("t")
    state = pf.state("t")
    assert state.limiter is not None and state.limiter.remaining == pytest.approx(1)  # token given back
    held.success()


def test_rate_rejection_holds_nothing(clock: FakeClock) -> None:
    pf = checker(
        clock,
        rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1, max_wait=0.1),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=1),
    )
    pf.check("t").success()
    with pytest.raises(RateLimitExceededError) as info:
        pf.check("t")
    assert info.value.retry_after == pytest.approx(1)
    assert pf.state("t").backpressure.inflight == 0  # type: ignore[union-attr]


def test_half_open_probe_slot_is_given_back_when_a_later_check_fails(clock: FakeClock) -> None:
    pf = checker(
        clock,
        circuit_breaker=CircuitBreakerConfig(failure_threshold=1, cooldown_seconds=5),
        backpressure=BackpressureConfig(max_inflight=1, max_wait=0),
    )
    pf.check("t").failure(StandardErrorCode.OVERLOADED)
    with pytest.raises(CircuitOpenError):
        pf.check("t")
    clock.advance(5)
    blocker = pf.state("t").backpressure
    assert blocker is not None
    blocker.acquire()  # someone else holds the only permit
    with pytest.raises(BackpressureError):
        pf.check("t")
    assert pf.state("t").breaker.probes_in_flight == 0  # the probe slot came back
    blocker.release()
    probe = pf.check("t")
    assert probe.permit.probe
    probe.success()
    assert pf.state("t").breaker.state == "closed"


async def test_cancelled_async_check_gives_everything_back(clock: FakeClock) -> None:
    pf = checker(
        clock,
        rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1, max_wait=None),
        backpressure=BackpressureConfig(max_inflight=1, max_wait=None),
    )
    holder = await pf.acheck("t")
    clock.auto_advance = False
    waiter = asyncio.ensure_future(pf.acheck("t"))
    await asyncio.sleep(0)
    clock.advance(1)  # the token arrives; the waiter now queues for the in-flight permit
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    state = pf.state("t")
    assert state.limiter is not None and state.limiter.remaining == pytest.approx(1)
    holder.success()
    assert state.backpressure is not None and state.backpressure.inflight == 0


def test_signals_snapshot_reads_live_state(clock: FakeClock) -> None:
    pf = checker(
        clock,
        rate_limiter=RateLimiterConfig(requests_per_second=10, burst_size=5),
        backpressure=BackpressureConfig(max_inflight=4),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
    )
    ticket = pf.check("t")
    pf.check("t").failure(StandardErrorCode.OVERLOADED)
    pf.check("t").failure(StandardErrorCode.OVERLOADED)
    signals = pf.state("t").signals()
    assert signals.circuit_state == "open"
    assert signals.current_inflight == 1
    assert signals.max_inflight == 4
    assert signals.rate_remaining == pytest.approx(2)
    assert signals.cooldown_remaining == pytest.approx(30)
    assert signals.opened_total == 1
    ticket.success()
    assert pf.state("t").signals().current_inflight == 0


def test_fake_clock_fires_timers_in_order_and_refuses_to_go_back() -> None:
    clock = FakeClock(start=100)
    fired: list[float] = []
    clock._add_timer(5, lambda: fired.append(clock.now()))
    clock._add_timer(2, lambda: fired.append(clock.now()))
    clock.advance(10)
    assert fired == [102, 105]
    assert clock.now() == 110
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


async def test_fake_clock_wakes_concurrent_sleepers_in_virtual_order() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.asleep(seconds)
        woke.append((name, clock.now()))

    await asyncio.gather(sleeper("c", 3), sleeper("a", 1), sleeper("b", 2))
    assert woke == [("a", 1), ("b", 2), ("c", 3)]


async def test_fake_clock_run_with_timeout() -> None:
    clock = FakeClock()

    async def slow() -> str:
        await clock.asleep(10)
        return "done"

    with pytest.raises(TimeoutError):
        await clock.arun_with_timeout(slow(), 3)
    assert clock.now() == 3
    assert await clock.arun_with_timeout(slow(), 30) == "done"


async def test_two_fake_clocks_on_one_loop_both_keep_time() -> None:
    """Each clock's driver waits for a loop with nothing else to run; it must not count the other clock's driver
    (it did: two executors with their own FakeClock in one test livelocked, neither clock ever advancing)."""
    first, second = FakeClock(), FakeClock()
    await first.asleep(0.5)  # ``first``'s driver is now scheduled on this loop and stays while tasks run

    async def busy_with_first() -> None:
        for _ in range(3):
            await first.asleep(1)

    async def on_second() -> float:
        await second.asleep(2)
        return second.now()

    # A bound only for the failure mode (a livelock); a passing run takes no real time at all.
    results = await asyncio.wait_for(asyncio.gather(busy_with_first(), on_second()), timeout=10)
    assert results[1] == 2 and first.now() == 3.5
