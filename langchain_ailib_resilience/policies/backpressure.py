"""In-flight limit (bulkhead): at most ``max_inflight`` calls at once, a bounded FIFO queue behind them.

A released permit is handed straight to the oldest waiter (no barging), so waiting is fair and the count never
exceeds the limit. A full queue, or a wait past ``max_wait``, is rejected with ``BackpressureError``; the
operation's own exceptions pass through untouched.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from types import TracebackType

from ..clock import SYSTEM_CLOCK, Clock
from ..errors.exceptions import BackpressureError
from ._waiter import Waiter


class Backpressure:
    """Concurrency limit, usable as ``with bp:`` / ``async with bp:`` or ``acquire()``/``release()``.

    Args:
        max_inflight: calls allowed at once, >= 1.
        max_wait: longest a caller queues for a permit, in seconds (``None``: unbounded).
        max_queue: most callers queued at once (``None``: unbounded); beyond it, rejection is immediate.
        clock: time source for the bounded wait.
    """

    def __init__(
        self,
        max_inflight: int = 50,
        *,
        max_wait: float | None = None,
        max_queue: int | None = None,
        clock: Clock | None = None,
        name: str = "backpressure",
    ) -> None:
        if not isinstance(max_inflight, int) or isinstance(max_inflight, bool) or max_inflight < 1:
            raise ValueError(f"max_inflight must be an integer >= 1, got {max_inflight!r}")
        if max_wait is not None and not max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 or None, got {max_wait!r}")
        if max_queue is not None and (not isinstance(max_queue, int) or max_queue < 0):
            raise ValueError(f"max_queue must be an integer >= 0 or None, got {max_queue!r}")
        self.max_inflight = max_inflight
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.name = name
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._inflight = 0
        self._waiters: deque[Waiter] = deque()
        self.peak_inflight = 0
        self.rejected_total = 0

    @property
    def inflight(self) -> int:
        """Permits held right now."""
        return self._inflight

    @property
    def current_inflight(self) -> int:
        return self._inflight

    @property
    def waiting(self) -> int:
        """Callers queued for a permit."""
        return len(self._waiters)

    @property
    def available(self) -> int:
        return max(0, self.max_inflight - self._inflight)

    def try_acquire(self) -> bool:
        """Take a permit only if one is free now and nobody is queued; never waits."""
        with self._lock:
            if self._inflight < self.max_inflight and not self._waiters:
                self._inflight += 1
                if self._inflight > self.peak_inflight:
                    self.peak_inflight = self._inflight
                return True
            return False

    def _take_or_enqueue(self, max_wait: float | None, is_async: bool) -> Waiter | None:
        with self._lock:
            if self._inflight < self.max_inflight and not self._waiters:
                self._inflight += 1
                if self._inflight > self.peak_inflight:
                    self.peak_inflight = self._inflight
                return None
            if max_wait == 0 or (self.max_queue is not None and len(self._waiters) >= self.max_queue):
                self.rejected_total += 1
                raise BackpressureError(
                    f"in-flight limit {self.name!r} is full ({self._inflight}/{self.max_inflight} in flight, "
                    f"{len(self._waiters)} queued)",
                    retry_after=None,
                )
            waiter = Waiter(is_async=is_async)
            self._waiters.append(waiter)
            return waiter

    def _give_up(self, waiter: Waiter, max_wait: float | None) -> BackpressureError | None:
        """Leave the queue; if a permit was handed over meanwhile, keep it (return None)."""
        with self._lock:
            if waiter.granted:
                return None
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            self.rejected_total += 1
        return BackpressureError(
            f"in-flight limit {self.name!r}: no permit within {max_wait}s ({self.max_inflight} in flight)"
        )

    def acquire(self, *, timeout: float | None = None) -> None:
        """Take a permit, waiting at most ``timeout`` (default ``max_wait``); raise ``BackpressureError``."""
        max_wait = self.max_wait if timeout is None else timeout
        waiter = self._take_or_enqueue(max_wait, is_async=False)
        if waiter is None:
            return
        assert waiter.event is not None
        deadline = None if max_wait is None else self._clock.now() + max_wait
        try:
            while not waiter.granted:
                remaining = None if deadline is None else deadline - self._clock.now()
                if remaining is not None and remaining <= 0:
                    error = self._give_up(waiter, max_wait)
                    if error is not None:
                        raise error
                    return
                self._clock.wait(waiter.event, remaining)
                waiter.event.clear()
        except BaseException:
            self._abandon(waiter)
            raise

    async def aacquire(self, *, timeout: float | None = None) -> None:
        """Async ``acquire``; a cancelled waiter leaves the queue and holds nothing."""
        max_wait = self.max_wait if timeout is None else timeout
        waiter = self._take_or_enqueue(max_wait, is_async=True)
        if waiter is None:
            return
        future = waiter.future
        assert future is not None
        try:
            if max_wait is None:
                # Our own future, resolved once, when a permit is handed over: awaited bare, as asyncio.Semaphore
                # does (a cancelled caller cancels it, which ``wake`` and ``_abandon`` expect).
                await future
                return
            deadline = self._clock.now() + max_wait
            while not waiter.granted:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    error = self._give_up(waiter, max_wait)
                    if error is not None:
                        raise error
                    return
                await self._clock.await_future(future, remaining)
        except BaseException:
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: Waiter) -> None:
        """Cancelled or failed while queued: leave the queue, or pass on a permit granted in the meantime."""
        with self._lock:
            if not waiter.granted:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                return
        self.release()

    def release(self) -> None:
        """Give a permit back: handed to the oldest waiter, or returned to the pool."""
        with self._lock:
            if self._waiters:
                head = self._waiters.popleft()
                head.granted = True
                head.wake()
                return
            if self._inflight <= 0:
                raise RuntimeError(f"{self.name!r}: release() without a matching acquire()")
            self._inflight -= 1

    def __enter__(self) -> Backpressure:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Backpressure:
        await self.aacquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Backpressure(max_inflight={self.max_inflight}, inflight={self._inflight}, waiting={self.waiting})"
