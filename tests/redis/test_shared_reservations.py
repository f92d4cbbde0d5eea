"""Reservations in the shared bucket, on virtual time (an in-memory store stands in for Redis).

A head that will wait takes its tokens now as debt and is told when they are due; it sleeps until then and goes
without asking again. So heads of several processes never race for one refill (one store call per grant) and
one that wakes late costs nobody capacity. A head that leaves before its time hands the reservation to the
next waiter here or gives it back, unless a later reservation was made after it (then its slot stays spent:
giving it back would put the next one on top of that later one).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.bench_redis import worst_excess
from langchain_ailib_resilience import FakeClock, RateLimitExceededError
from langchain_ailib_resilience.policies._bucket import apply_bucket
from langchain_ailib_resilience.state import BucketReply, MemoryStateStore, SharedRateLimiter


class CountingStore(MemoryStateStore):
    """A memory store counting the takes (tokens > 0) it is asked for and recording every call."""

    name = "counting"

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.takes = 0
        self.calls: list[tuple[float, float]] = []  # (tokens, due) of every call

    def take(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply:
        self.takes += tokens > 0
        self.calls.append((tokens, due))
        return super().take(key, tokens, rate, burst, pause, reserve, due)


class GatedStore(CountingStore):
    """Async answers wait for ``gate``: a take still in flight when its caller is cancelled."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.gate = asyncio.Event()

    async def atake(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply:
        await self.gate.wait()
        return self.take(key, tokens, rate, burst, pause, reserve, due)


def level(store: MemoryStateStore, rate: float = 1.0, burst: float = 1.0) -> float:
    return store.take("k", 0, rate, burst).level


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# --- the arithmetic ---------------------------------------------------------------------------------------


def test_a_reservation_is_taken_as_debt_within_the_wait_accepted() -> None:
    assert apply_bucket(0.0, 0.0, 0.0, 1, rate=2.0, burst=1, reserve=1.0) == (-0.5, -1.0, 0.0)
    assert apply_bucket(-1.0, 0.0, 0.0, 1, rate=2.0, burst=1, reserve=1.0) == (-1.0, -2.0, 0.0)  # after it
    assert apply_bucket(-2.0, 0.0, 0.0, 1, rate=2.0, burst=1, reserve=1.0) == (1.5, -2.0, 0.0)  # too long: none
    assert apply_bucket(1.0, 0.0, 0.0, 1, rate=2.0, burst=1, reserve=1.0) == (0.0, 0.0, 0.0)  # free: no debt


def test_only_the_latest_reservation_goes_back() -> None:
    # Two reservations at t=0 (rate 1, burst 1, empty): due at 1 and 2; the level is -2.
    latest = apply_bucket(-2.0, 0.0, 0.5, -1, rate=1.0, burst=1, due=2.0)
    assert latest[1] == pytest.approx(-0.5)  # returned: the next one is due at 2, where the returned one was
    earlier = apply_bucket(-2.0, 0.0, 0.5, -1, rate=1.0, burst=1, due=1.0)
    assert earlier[1] == pytest.approx(-1.5)  # kept spent: the next one is due at 3, not on top of the one at 2
    plain = apply_bucket(-2.0, 0.0, 0.5, -1, rate=1.0, burst=1)
    assert plain[1] == pytest.approx(-0.5)  # a plain give-back (a call that failed) is as before


@given(
    st.lists(
        st.tuples(st.floats(0.0, 0.5), st.floats(0.1, 3.0), st.floats(0.0, 2.0)),
        min_size=1,
        max_size=60,
    )
)
def test_grants_at_their_due_times_never_exceed_rate_times_window_plus_burst(
    ops: list[tuple[float, float, float]],
) -> None:
    rate, burst = 4.0, 3
    lvl: float | None = None
    stamp = now = 0.0
    granted: list[float] = []
    for dt, tokens, reserve in ops:
        now += dt
        wait, lvl, stamp = apply_bucket(lvl, stamp, now, tokens, rate, burst, reserve=reserve)
        if wait <= 0.0:
            granted.extend([now - wait] * int(tokens))  # whole tokens only: a conservative count
    assert worst_excess(granted, rate, burst) <= 1e-6


# --- no race for a refill, no capacity lost to lateness -----------------------------------------------------


async def test_heads_of_two_processes_ask_once_per_grant_and_a_late_wake_up_loses_nothing() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    processes = [SharedRateLimiter(store, "k", 1, 1, clock=clock) for _ in range(2)]
    grants: list[float] = []

    async def client(limiter: SharedRateLimiter) -> None:
        while True:
            await limiter.aacquire_or_raise()
            assert limiter.last_grant_time is not None
            grants.append(limiter.last_grant_time)

    tasks = [asyncio.create_task(client(limiter)) for limiter in processes for _ in range(2)]
    await settle()
    for _ in range(20):  # every waiter wakes up to 0.75 s late: it only runs when the clock is moved on
        clock.advance(0.75)
        await settle()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert grants == [float(t) for t in range(16)]  # one at once, then one every 1/rate: none lost in 15 s
    assert store.takes == len(grants) + 2  # one ask per grant (+ the two heads reserved when cancelled)
    assert worst_excess(grants, 1, 1) <= 1e-9


def test_a_head_sleeps_once_until_its_reservation_is_due(clock: FakeClock) -> None:
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 10, 2, clock=clock)
    limiter.acquire_or_raise(tokens=2)
    limiter.acquire_or_raise(tokens=2)
    assert clock.sleeps == [pytest.approx(0.2)] and store.takes == 2  # asked once, never again after the sleep
    assert level(store, 10, 2) == pytest.approx(0.0, abs=1e-9)


async def test_the_estimate_counts_a_reservation_once() -> None:
    clock = FakeClock(auto_advance=False)
    limiter = SharedRateLimiter(MemoryStateStore(clock), "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())  # reserves: due at 1
    await settle()
    assert limiter.wait_estimate() == pytest.approx(2.0)  # behind the head's token, not behind it twice
    clock.advance(1.0)
    await head


# --- leaving before its time: a test per path ---------------------------------------------------------------


async def test_a_cancelled_head_hands_its_reservation_to_the_next_waiter_here() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())  # reserves: due at 1
    heir = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    clock.advance(1.0)
    await asyncio.wait_for(heir, 1)  # went at 1, on the reservation it inherited
    assert limiter.last_grant_time == 1.0
    assert store.takes == 2 and all(due == 0.0 for tokens, due in store.calls if tokens < 0)  # none given back
    assert level(store) == pytest.approx(0.0)


async def test_a_cancelled_head_with_nobody_after_it_gives_its_reservation_back() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    assert level(store) == pytest.approx(-1.0)
    clock.advance(0.5)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert (-1, 1.0) in store.calls  # the reservation due at 1, given back
    assert level(store) == pytest.approx(0.5)  # as if never taken
    assert limiter.waiting == 0 and limiter.granted_total == 1


async def test_a_reservation_given_back_after_a_later_one_stays_spent() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    here = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    elsewhere = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await here.aacquire_or_raise()
    head = asyncio.create_task(here.aacquire_or_raise())  # due at 1
    await settle()
    other = asyncio.create_task(elsewhere.aacquire_or_raise())  # due at 2
    await settle()
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert level(store) == pytest.approx(-2.0)  # not given back: the next one is due at 3, not at 2 with `other`
    late = asyncio.create_task(here.aacquire_or_raise())
    await settle()
    clock.advance(2.0)
    await asyncio.wait_for(other, 1)
    assert elsewhere.last_grant_time == 2.0
    clock.advance(1.0)
    await asyncio.wait_for(late, 1)
    assert here.last_grant_time == 3.0


def test_a_sync_head_interrupted_in_its_sleep_gives_its_reservation_back() -> None:
    class Interrupt(BaseException):
        pass

    class Interrupted(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise Interrupt

    clock = Interrupted()
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    limiter.acquire_or_raise()
    with pytest.raises(Interrupt):
        limiter.acquire_or_raise()
    assert store.calls[-1] == (-1, 1.0)
    assert level(store) == pytest.approx(0.0) and limiter.waiting == 0


async def test_a_reservation_granted_after_its_caller_was_cancelled_goes_back() -> None:
    clock = FakeClock(auto_advance=False)
    store = GatedStore(clock)
    store.take("k", 1, 1, 1)  # empty: the next take is a reservation
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    caller = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    store.gate.set()  # the store reserves after the caller left...
    await settle()
    assert store.calls[-2:] == [(1, 0.0), (-1, 1.0)]  # ...and the reservation went back
    assert level(store) == pytest.approx(0.0)
    assert limiter.waiting == 0 and limiter.granted_total == 0


async def test_the_next_waiter_does_not_inherit_a_reservation_due_after_its_deadline() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 2, clock=clock)
    await limiter.aacquire_or_raise(tokens=2)
    head = asyncio.create_task(limiter.aacquire_or_raise(tokens=2))  # due at 2
    await settle()
    limiter.set_limits(4, 2)  # the limit was raised meanwhile: the next waiter's estimate fits its 1 s
    short = asyncio.create_task(limiter.aacquire_or_raise(tokens=1, timeout=1.0))
    await settle()
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert (-2, 2.0) in store.calls  # given back, not handed to a waiter that could not wait until 2
    clock.advance(1.0)
    await asyncio.wait_for(short, 1)


async def test_an_heir_asking_less_takes_its_part_and_the_rest_goes_back() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 2, clock=clock)
    await limiter.aacquire_or_raise(tokens=2)
    head = asyncio.create_task(limiter.aacquire_or_raise(tokens=2))  # due at 2
    heir = asyncio.create_task(limiter.aacquire_or_raise(tokens=1))
    await settle()
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert (-1, 2.0) in store.calls and level(store, 1, 2) == pytest.approx(-1.0)
    clock.advance(2.0)
    await asyncio.wait_for(heir, 1)
    assert limiter.last_grant_time == 2.0


async def test_a_head_whose_reservation_would_overrun_its_timeout_is_told_at_once() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    here = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    elsewhere = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await here.aacquire_or_raise()
    others = [asyncio.create_task(elsewhere.aacquire_or_raise()) for _ in range(2)]
    await settle()  # elsewhere's head reserved the token due at 1
    with pytest.raises(RateLimitExceededError) as info:
        await here.aacquire_or_raise(timeout=1.5)  # due at 2 would be past it
    assert info.value.retry_after == pytest.approx(2.0)
    assert clock.now() == 0.0 and level(store) == pytest.approx(-1.0)  # at once, nothing taken
    clock.advance(2.0)
    await settle()
    clock.advance(1.0)
    await asyncio.wait_for(asyncio.gather(*others), 1)


async def test_the_local_fallback_bucket_reserves_and_gives_back_the_same_way() -> None:
    clock = FakeClock(auto_advance=False)

    class Down(MemoryStateStore):
        name = "down"

        def take(self, *args: object, **kwargs: object) -> BucketReply:
            from langchain_ailib_resilience.state import StateStoreUnavailableError

            raise StateStoreUnavailableError("connection refused")

    limiter = SharedRateLimiter(Down(clock), "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    assert limiter.backend == "local-fallback"
    head = asyncio.create_task(limiter.aacquire_or_raise())
    await settle()
    assert limiter.wait_estimate() == pytest.approx(2.0)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert limiter.wait_estimate() == pytest.approx(1.0)  # given back to the local bucket
    assert limiter.try_acquire() is False
    clock.advance(1.0)
    assert limiter.try_acquire() is True


async def test_a_pause_voids_the_reservation_this_process_holds_inside_it() -> None:
    clock = FakeClock(auto_advance=False)
    store = CountingStore(clock)
    limiter = SharedRateLimiter(store, "k", 1, 1, clock=clock)
    await limiter.aacquire_or_raise()
    head = asyncio.create_task(limiter.aacquire_or_raise())  # due at 1
    await settle()
    clock.advance(0.5)
    limiter.pause(5.0)  # a Retry-After: nothing before 5.5
    await settle()
    clock.advance(0.5)
    await settle()
    assert not head.done()  # not sent at 1, inside the pause: it asked again
    clock.advance(4.5)
    await asyncio.wait_for(head, 1)
    assert limiter.last_grant_time == pytest.approx(5.5)


@pytest.mark.parametrize("seed", range(8))
async def test_cancellations_and_timeouts_in_three_processes_never_break_the_bound(seed: int) -> None:
    import random

    rng = random.Random(seed)
    clock = FakeClock(auto_advance=False)
    store = MemoryStateStore(clock)
    processes = [SharedRateLimiter(store, "k", 2, 2, clock=clock) for _ in range(3)]
    grants: list[float] = []
    outcomes: list[str] = []

    async def call(limiter: SharedRateLimiter, timeout: float | None) -> None:
        try:
            await limiter.aacquire_or_raise(timeout=timeout)
        except RateLimitExceededError:
            outcomes.append("rejected")
            return
        assert limiter.last_grant_time is not None
        grants.append(limiter.last_grant_time)
        outcomes.append("granted")

    tasks: list[asyncio.Task[None]] = []
    for _ in range(120):
        for _ in range(rng.randrange(3)):
            timeout = rng.choice([None, 0.5, 1.0, 3.0])
            tasks.append(asyncio.create_task(call(rng.choice(processes), timeout)))
        await settle()
        live = [task for task in tasks if not task.done()]
        if live and rng.random() < 0.3:
            rng.choice(live).cancel()
        await settle()
        clock.advance(rng.choice([0.0, 0.05, 0.2, 0.5]))
        await settle()
    for _ in range(1000):  # let every waiter left finish: nobody is stranded
        if all(task.done() for task in tasks):
            break
        clock.advance(0.5)
        await settle()
    assert all(task.done() for task in tasks)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert worst_excess(grants, 2, 2) <= 1e-6
    assert outcomes.count("granted") == len(grants) > 0
    assert all(limiter.waiting == 0 for limiter in processes)
