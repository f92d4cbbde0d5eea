"""In-flight limit: never above the limit, FIFO hand-off, bounded queue and wait, cancellation, exceptions untouched."""

from __future__ import annotations

import asyncio
import threading

import pytest

from langchain_ailib_resilience import Backpressure, BackpressureError, FakeClock


def test_limit_and_immediate_rejection_when_queue_full(clock: FakeClock) -> None:
    bp = Backpressure(2, max_queue=0, clock=clock)
    bp.acquire()
    bp.acquire()
    with pytest.raises(BackpressureError, match="2/2 in flight") as info:
        bp.acquire()
    assert info.value.local and info.value.fallbackable
    bp.release()
    bp.acquire()
    assert bp.inflight == 2


def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        Backpressure(1).release()


@pytest.mark.parametrize(("kwargs", "needle"), [({"max_inflight": 0}, "max_inflight"), ({"max_wait": -1}, "max_wait")])
def test_bad_arguments_are_named(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Backpressure(**kwargs)  # type: ignore[arg-type]


def test_operation_exceptions_pass_through_unchanged() -> None:
    bp = Backpressure(1)
    with pytest.raises(TimeoutError, match="the operation's own"), bp:
        raise TimeoutError("the operation's own")
    assert bp.inflight == 0


async def test_bounded_wait_times_out_on_the_clock(clock: FakeClock) -> None:
    bp = Backpressure(1, max_wait=5, clock=clock)
    await bp.aacquire()
    with pytest.raises(BackpressureError, match="within 5"):
        await bp.aacquire()
    assert clock.now() == pytest.approx(5)
    assert bp.waiting == 0
    bp.release()
    assert bp.inflight == 0


async def test_fifo_hand_off_and_never_above_limit(clock: FakeClock) -> None:
    bp = Backpressure(3, clock=clock)
    order: list[int] = []
    peak = 0

    async def worker(i: int) -> None:
        nonlocal peak
        async with bp:
            peak = max(peak, bp.inflight)
            order.append(i)
            await clock.asleep(1)

    await asyncio.gather(*(worker(i) for i in range(30)))
    assert order == list(range(30))
    assert peak == 3
    assert bp.peak_inflight == 3
    assert bp.inflight == 0
    assert clock.now() == pytest.approx(10)


async def test_thousand_cancellations_leave_no_permit_held(clock: FakeClock) -> None:
    bp = Backpressure(5, clock=clock)
    holders = [asyncio.ensure_future(bp.aacquire()) for _ in range(5)]
    await asyncio.gather(*holders)
    waiters = [asyncio.ensure_future(bp.aacquire()) for _ in range(1000)]
    await asyncio.sleep(0)
    assert bp.waiting == 1000
    bp.release()  # hands one permit to the head waiter, which is then cancelled before it runs
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert bp.waiting == 0
    assert bp.inflight == 4  # the 4 holders still hold; the handed-over permit came back
    for _ in range(4):
        bp.release()
    assert bp.inflight == 0


def test_threads_never_exceed_the_limit() -> None:
    bp = Backpressure(4)
    current = 0
    peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal current, peak
        for _ in range(200):
            with bp:
                with lock:
                    current += 1
                    peak = max(peak, current)
                with lock:
                    current -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert peak <= 4
    assert bp.inflight == 0
    assert bp.waiting == 0
