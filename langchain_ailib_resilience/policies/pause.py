"""The provider said "nothing until T": a target-wide pause, for every caller (and, with a store, every process).

A target with a rate limiter keeps its pause as debt in its bucket (``RateLimiter.pause``), so this gate is for
targets with no configured rate. It costs nothing on the happy path: ``remaining()`` reads one float while no
pause is set. With a shared store the pause is raised as an expiring flag there, and the flag is read at most
every ``refresh`` seconds per process, so another process learns of a pause within that.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

from ..clock import Clock
from ..errors.codes import StandardErrorCode
from ..errors.exceptions import RateLimitExceededError, ResilienceError

logger = logging.getLogger("langchain_ailib_resilience.pacing")

MAX_PAUSE = 3600.0
"""The longest pause one answer can set: a misread header must not stop a target for longer than an hour."""

PAUSE_CODES = frozenset({StandardErrorCode.RATE_LIMITED, StandardErrorCode.OVERLOADED})
PAUSE_STATUSES = frozenset({429, 503})


def pause_asked(error: ResilienceError) -> float:
    """Seconds the provider asked *every* caller of the target to hold off: a 429/503 (rate limited,
    overloaded) with a Retry-After in any form we parse; 0.0 for anything else, or a local rejection."""
    if error.local or error.retry_after is None:
        return 0.0
    if error.code not in PAUSE_CODES and error.status_code not in PAUSE_STATUSES:
        return 0.0
    seconds = error.retry_after
    if not (seconds > 0 and math.isfinite(seconds)):
        return 0.0
    return min(seconds, MAX_PAUSE)


class PauseGate:
    """Nothing is granted to the target before the pause ends; shared through ``store`` when given.

    ``store`` is a ``state.FlagStore`` (``MemoryStateStore``, ``RedisStateStore``) and ``key`` its flag.
    """

    __slots__ = ("_clock", "_key", "_lock", "_pending", "_read_at", "_store", "_until", "refresh")

    def __init__(self, clock: Clock, store: Any = None, key: str = "", *, refresh: float = 0.25) -> None:
        self._clock = clock
        self._store = store
        self._key = key
        self.refresh = refresh
        self._until = 0.0  # 0.0: no pause (the happy path reads only this)
        self._read_at = 0.0
        self._lock = threading.Lock()
        self._pending: set[asyncio.Task[Any]] = set()

    @property
    def shared(self) -> bool:
        return self._store is not None

    def _extend(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock.now() + seconds)

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (a longer pause already set is kept); tell the store too."""
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        seconds = min(seconds, MAX_PAUSE)
        self._extend(seconds)
        if self._store is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._call_store(self._store.raise_flag, seconds)
            return
        task = asyncio.ensure_future(self._araise(seconds))  # never a blocking store call on a loop
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _araise(self, seconds: float) -> None:
        from ..state._store import StateStoreUnavailableError

        try:
            await self._store.araise_flag(self._key, seconds)
        except StateStoreUnavailableError as exc:
            logger.debug("pause %r: store unreachable (%s); the pause holds in this process only", self._key, exc)

    def _call_store(self, method: Any, *args: Any) -> Any:
        from ..state._store import StateStoreUnavailableError

        try:
            return method(self._key, *args)
        except StateStoreUnavailableError as exc:
            logger.debug("pause %r: store unreachable (%s); the pause holds in this process only", self._key, exc)
            return None

    def remaining(self) -> float:
        """Seconds until the pause ends (0.0: none), as this process knows it."""
        until = self._until
        if not until:
            return 0.0
        left = until - self._clock.now()
        if left > 0:
            return left
        with self._lock:
            if self._until == until:
                self._until = 0.0
        return 0.0

    def _due(self) -> bool:
        return self._store is not None and self._clock.now() >= self._read_at

    def _learned(self, remaining: Any) -> None:
        self._read_at = self._clock.now() + self.refresh
        if isinstance(remaining, float | int) and remaining > 0:
            self._extend(float(remaining))

    def sync(self) -> None:
        """Read the store's flag if it is time to (blocking: never call it on an event loop's thread)."""
        if self._due():
            self._learned(self._call_store(self._store.flag_remaining))

    async def async_sync(self) -> None:
        """``sync`` through the store's asyncio client."""
        if not self._due():
            return
        from ..state._store import StateStoreUnavailableError

        try:
            remaining = await self._store.aflag_remaining(self._key)
        except StateStoreUnavailableError as exc:
            logger.debug("pause %r: store unreachable (%s)", self._key, exc)
            remaining = None
        self._learned(remaining)

    def wait_needed(self, bound: float | None, name: str) -> float:
        """Seconds to wait before going on; raises ``RateLimitExceededError`` when that exceeds ``bound``."""
        left = self.remaining()
        if left > 0 and bound is not None and left > bound:
            raise RateLimitExceededError(
                f"target {name!r} is paused by the provider for {left:.3f}s more; retry in {left:.3f}s",
                retry_after=left,
            )
        return left
