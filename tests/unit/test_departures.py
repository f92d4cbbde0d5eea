"""A rate token leaves with its request: the limiter counts the spacing from the departure, not the grant."""

from __future__ import annotations

import asyncio

import pytest

from langchain_ailib_resilience import FakeClock, departures
from langchain_ailib_resilience.policies.rate_limiter import RateLimiter


def strict(clock: FakeClock) -> RateLimiter:
    return RateLimiter(20.0, 1, clock=clock)  # 50 ms apart, nothing banked


def test_a_request_that_leaves_late_pushes_the_next_grant_back_by_as_much() -> None:
    # Granted at 50 ms, left at 60 ms (6 ms later than the least delay seen, 4 ms): the next request must not
    # be granted at 100 ms (a strict provider would see it 44 ms after this one) but at 106 ms.
    clock = FakeClock()
    limiter = strict(clock)
    assert limiter.try_acquire()
    clock.advance(0.004)
    limiter.departed(0.0)  # the least delay so far: nothing to correct
    clock.advance(0.046)
    assert limiter.try_acquire()  # at 50 ms
    clock.advance(0.010)
    limiter.departed(0.050)
    assert limiter.wait_estimate() == pytest.approx(0.046)  # free at 106 ms, not 100 ms


def test_a_departure_never_takes_the_bucket_below_empty_and_a_stale_grant_is_ignored() -> None:
    clock = FakeClock()
    limiter = strict(clock)
    assert limiter.try_acquire()
    limiter.departed(0.0)
    clock.advance(0.5)  # a request held half a second (a slow in-flight permit, a stall) before it left
    limiter.departed(0.0)
    assert limiter.remaining == 0.0 and limiter.wait_estimate() == pytest.approx(0.05)  # one interval, no debt
    clock.advance(5.0)
    limiter.departed(clock.now() - 2.0)  # older than any grant-to-send delay: not this request's
    assert limiter.remaining == 1.0


class Recorder:
    def __init__(self) -> None:
        self.seen: list[float] = []

    def departed(self, granted_at: float) -> None:
        self.seen.append(granted_at)


async def test_each_task_departs_its_own_grant_once() -> None:
    limiter = Recorder()

    async def caller(at: float, leaves: asyncio.Event) -> None:
        departures.granted(limiter, at)
        await leaves.wait()
        departures.departed()
        departures.departed()  # LiteLLM may call its pre-call hook twice (a reformatted retry): counted once

    first, second = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(caller(1.0, first)), asyncio.create_task(caller(2.0, second))]
    await asyncio.sleep(0)
    second.set()
    await asyncio.sleep(0)
    first.set()
    await asyncio.gather(*tasks)
    assert limiter.seen == [2.0, 1.0]
