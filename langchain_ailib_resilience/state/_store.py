"""The bucket store seam: where a shared token bucket lives, behind one atomic take-or-tell-the-wait call.

A store keeps, per key, a token bucket (level, timestamp) and answers ``take`` atomically: either the tokens
are taken (``wait == 0``), or, for a caller willing to wait (``reserve``), taken ahead as debt and due after
``-wait``, or nothing is taken and the reply says how many seconds they need, so a waiter sleeps exactly that
long instead of polling. Stores also keep expiring flags (a circuit breaker's "open for N
more seconds"). ``MemoryStateStore`` keeps both in this process (``memory://`` and the unit-test double);
``RedisStateStore`` keeps them in Redis, shared by every process.
"""

from __future__ import annotations

import asyncio
import threading
from typing import NamedTuple, Protocol, runtime_checkable

from ..clock import SYSTEM_CLOCK, Clock
from ..policies._bucket import EPSILON, apply_bucket

__all__ = [
    "EPSILON",
    "BucketReply",
    "BucketStore",
    "FlagStore",
    "MemoryStateStore",
    "StateStoreUnavailableError",
    "apply_bucket",
]


def loop_running() -> bool:
    """Whether this thread runs an event loop: then no store may be asked synchronously (it would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class StateStoreUnavailableError(Exception):
    """The store did not answer (connection refused, timeout, server error); callers fall back to local state."""


class BucketReply(NamedTuple):
    """A store's answer to ``take``.

    ``wait``: 0.0 when the tokens were taken (or given back, or only peeked at); < 0 when they were reserved:
    taken now, due in ``-wait`` seconds; > 0: seconds until the bucket would hold them, nothing taken.
    ``level``: tokens left after the call (below zero while reservations are outstanding). ``time``: the
    store's own clock in seconds (Redis: server ``TIME`` since the epoch), the same scale for every process.
    """

    wait: float
    level: float
    time: float


@runtime_checkable
class BucketStore(Protocol):
    """Atomic token buckets keyed by name; ``take`` with ``tokens > 0`` takes, ``< 0`` gives back, ``0`` peeks.

    ``reserve`` (seconds a waiter accepts) and ``due`` (the store time a returned reservation was due) follow
    ``policies._bucket.apply_bucket``. Raises ``StateStoreUnavailableError`` when the store cannot answer; it
    must never block much longer than its own short timeout.
    """

    name: str

    def take(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply: ...

    async def atake(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply: ...


@runtime_checkable
class FlagStore(Protocol):
    """Expiring flags (a breaker's "open for N more seconds") that every process can raise and read."""

    name: str

    def raise_flag(self, key: str, seconds: float) -> None:
        """Set ``key`` for ``seconds``, unless it is already set for longer."""
        ...

    def flag_remaining(self, key: str) -> float:
        """Seconds ``key`` stays set (0.0 when unset)."""
        ...

    async def araise_flag(self, key: str, seconds: float) -> None:
        """``raise_flag`` for event loops: never blocks the loop."""
        ...

    async def aflag_remaining(self, key: str) -> float:
        """``flag_remaining`` for event loops: never blocks the loop."""
        ...


class MemoryStateStore:
    """Buckets in this process, on an injected clock: ``memory://`` and the double for unit tests."""

    name = "memory"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._flags: dict[str, float] = {}

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
        with self._lock:
            now = self._clock.now()
            level, stamp = self._buckets.get(key, (None, now))
            wait, new_level, new_stamp = apply_bucket(level, stamp, now, tokens, rate, burst, pause, reserve, due)
            self._buckets[key] = (new_level, new_stamp)
            return BucketReply(wait, new_level, now)

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
        return self.take(key, tokens, rate, burst, pause, reserve, due)

    def raise_flag(self, key: str, seconds: float) -> None:
        with self._lock:
            until = self._clock.now() + seconds
            self._flags[key] = max(until, self._flags.get(key, until))

    def flag_remaining(self, key: str) -> float:
        with self._lock:
            return max(0.0, self._flags.get(key, 0.0) - self._clock.now())

    async def araise_flag(self, key: str, seconds: float) -> None:
        self.raise_flag(key, seconds)

    async def aflag_remaining(self, key: str) -> float:
        return self.flag_remaining(key)

    def __repr__(self) -> str:
        return f"MemoryStateStore(buckets={len(self._buckets)})"
