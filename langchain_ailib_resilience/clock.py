"""Time as a dependency: every policy reads and waits through a ``Clock`` so tests can run in virtual time.

``SystemClock`` is the real thing (``time.monotonic``, ``time.sleep``, ``asyncio``). ``FakeClock`` (also exported
from ``langchain_ailib_resilience.testing``) keeps virtual time: sync sleeps advance it at once, async sleeps are
timers that fire when the event loop has nothing else to run, so tests never sleep for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Clock(Protocol):
    """What the policies need from time. All values are seconds on a monotonic scale."""

    def now(self) -> float:
        """Monotonic time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...

    def wait(self, event: threading.Event, timeout: float | None) -> None:
        """Block until ``event`` is set or ``timeout`` elapses (the caller checks its own state after)."""
        ...

    async def await_future(self, future: asyncio.Future[Any], timeout: float | None) -> None:
        """Suspend until ``future`` is done or ``timeout`` elapses; never cancels ``future``."""
        ...

    async def arun_with_timeout(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        """Await ``awaitable``, raising ``TimeoutError`` (after cancelling it) when ``timeout`` elapses first."""
        ...


# time.sleep and Event.wait raise OverflowError past this (about 292 years); a longer wait is a wait forever.
_LONGEST_WAIT = threading.TIMEOUT_MAX


class SystemClock:
    """The real clock: ``time.monotonic`` (the same scale as the asyncio loop's time)."""

    __slots__ = ()

    now = staticmethod(time.monotonic)
    """Monotonic time in seconds (the builtin itself: no Python frame on every admission)."""

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(min(seconds, _LONGEST_WAIT))

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def wait(self, event: threading.Event, timeout: float | None) -> None:
        event.wait(None if timeout is None else min(max(timeout, 0.0), _LONGEST_WAIT))

    async def await_future(self, future: asyncio.Future[Any], timeout: float | None) -> None:
        if future.done():
            return
        # One future of our own, woken by ``future`` or the timer: what ``asyncio.wait`` does, without its sets.
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake(_: object = None) -> None:
            if not done.done():
                done.set_result(None)

        future.add_done_callback(wake)
        handle = None if timeout is None else loop.call_later(max(timeout, 0.0), wake)
        try:
            await done
        finally:
            if handle is not None:
                handle.cancel()
            future.remove_done_callback(wake)

    async def arun_with_timeout(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        if timeout is None:
            return await awaitable
        async with asyncio.timeout(max(timeout, 0.0)):
            return await awaitable

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


class _Timer:
    __slots__ = ("callback", "cancelled", "deadline", "fired", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self.fired = False

    def __lt__(self, other: _Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


def _is_fake_clock_driver(handle: object) -> bool:
    return getattr(getattr(handle, "_callback", None), "__func__", None) is FakeClock._drive


class FakeClock:
    """Virtual time for tests, sync and async.

    - ``advance(seconds)`` moves time forward, firing due timers in deadline order.
    - ``sleep(seconds)`` (sync) advances time by ``seconds`` at once when ``auto_advance`` is on (the default);
      otherwise it blocks until another thread advances the clock past its deadline.
    - ``await asleep(seconds)`` registers a timer. With ``auto_advance``, when the event loop has no other ready
      callbacks, the clock jumps to the earliest timer, so concurrent tasks wake in virtual-time order.
    - ``wait``/``await_future`` are bounded waits whose timeout runs on virtual time.
    ``sleeps`` records every sleep duration asked for, which tests assert on.
    """

    def __init__(self, start: float = 0.0, *, auto_advance: bool = True) -> None:
        self._now = float(start)
        self.auto_advance = auto_advance
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._drivers: set[asyncio.AbstractEventLoop] = set()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer that falls due, in order."""
        if seconds < 0:
            raise ValueError(f"cannot advance a clock backwards (seconds={seconds})")
        self._advance_to(self._now + seconds)

    def _advance_to(self, target: float) -> None:
        while True:
            with self._lock:
                while self._timers and self._timers[0].cancelled:
                    heapq.heappop(self._timers)
                if not self._timers or self._timers[0].deadline > target:
                    self._now = max(self._now, target)
                    return
                timer = heapq.heappop(self._timers)
                self._now = max(self._now, timer.deadline)
                timer.fired = True
            timer.callback()

    def _add_timer(self, delay: float, callback: Callable[[], None]) -> _Timer:
        with self._lock:
            timer = _Timer(self._now + max(delay, 0.0), next(self._seq), callback)
            heapq.heappush(self._timers, timer)
            return timer

    @property
    def pending_timers(self) -> int:
        """Timers registered and not yet fired or cancelled (sleepers and bounded waiters)."""
        with self._lock:
            return sum(1 for t in self._timers if not t.cancelled)

    # --- sync ---------------------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            return
        if self.auto_advance:
            self.advance(seconds)
            return
        event = threading.Event()
        self._add_timer(seconds, event.set)
        event.wait()

    def wait(self, event: threading.Event, timeout: float | None) -> None:
        if event.is_set():
            return
        if timeout is None:
            event.wait()
            return
        if timeout <= 0:
            return
        # Waiters check their own state under their policy's lock when woken, so setting their event on
        # timeout is safe: a timed-out waiter sees it was not granted and gives up.
        timer = self._add_timer(timeout, event.set)
        event.wait()
        timer.cancelled = True

    # --- async --------------------------------------------------------------------------------------------

    def _async_timer(self, delay: float) -> tuple[asyncio.Future[None], _Timer]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def fire() -> None:
            def resolve() -> None:
                if not future.done():
                    future.set_result(None)

            if loop.is_closed():
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                resolve()
            else:
                loop.call_soon_threadsafe(resolve)

        timer = self._add_timer(delay, fire)
        if self.auto_advance:
            self._ensure_driver(loop)
        return future, timer

    def _ensure_driver(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop in self._drivers:
            return
        self._drivers.add(loop)
        loop.call_soon(self._drive, loop)

    def _drive(self, loop: asyncio.AbstractEventLoop) -> None:
        # Jump time only when nothing else is ready to run: then no task can act before the next timer. Other
        # fake clocks' drivers do not count: two clocks on one loop would each wait for the other forever.
        ready = getattr(loop, "_ready", ())
        if any(not _is_fake_clock_driver(handle) for handle in ready):
            loop.call_soon(self._drive, loop)
            return
        with self._lock:
            while self._timers and self._timers[0].cancelled:
                heapq.heappop(self._timers)
            next_deadline = self._timers[0].deadline if self._timers else None
        if next_deadline is None:
            self._drivers.discard(loop)
            return
        self._advance_to(next_deadline)
        loop.call_soon(self._drive, loop)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future, timer = self._async_timer(seconds)
        try:
            await future
        finally:
            timer.cancelled = True

    async def await_future(self, future: asyncio.Future[Any], timeout: float | None) -> None:
        if future.done():
            return
        if timeout is None:
            await asyncio.wait((future,))
            return
        if timeout <= 0:
            return
        timer_future, timer = self._async_timer(timeout)
        try:
            await asyncio.wait((future, timer_future), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancelled = True

    async def arun_with_timeout(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        if timeout is None:
            return await awaitable
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        try:
            await self.await_future(task, timeout)
        except BaseException:
            task.cancel()
            raise
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise TimeoutError(f"timed out after {timeout}s")
        return task.result()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.6f}, pending_timers={self.pending_timers})"
