"""A queued caller that another thread or event loop can wake: the one primitive behind FIFO hand-offs.

Policies keep waiters in a deque under their own lock, decide grants under that lock (``granted``), and only
then ``wake()`` the waiter; a woken waiter re-checks its state under the lock. So a wake-up is a hint, never a
grant by itself, and a timed-out or cancelled waiter can tell whether it was granted just before.
"""

from __future__ import annotations

import asyncio
import threading


class Waiter:
    __slots__ = ("amount", "event", "future", "granted", "loop")

    def __init__(self, amount: float = 1, *, is_async: bool) -> None:
        self.amount = amount
        self.granted = False
        if is_async:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            self.future: asyncio.Future[None] | None = self.loop.create_future()
            self.event: threading.Event | None = None
        else:
            self.loop = None
            self.future = None
            self.event = threading.Event()

    def wake(self) -> None:
        """Wake the waiter from any thread or loop (idempotent)."""
        if self.event is not None:
            self.event.set()
            return
        loop, future = self.loop, self.future
        assert loop is not None
        assert future is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _resolve(future)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
