"""Opening on one worker opens the circuit for all (``share_breaker_state=True``): a flag with a TTL.

Deliberately simple: when this process's breaker opens, it raises the flag ``ailib:cb:{target}`` for its
cooldown; every process's ``admit()`` consults that flag (cached for ``refresh`` seconds, so at most one store
read per interval) and, while it is up and its own breaker is closed, rejects with ``CircuitOpenError`` as if
open. Half-open probing stays with the process that opened: when its cooldown ends the flag expires, the others
resume, and a failed probe raises the flag again. A store that does not answer never blocks calls: the flag
reads as down and is asked again after ``store_backoff``.

On an event loop's thread the store is only ever awaited (``redis.asyncio``), never called: ``arefresh`` reads
the flag before an async admission, and a read or publish due at any other moment runs as a task of the loop
while the call goes on with the last known value.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Coroutine
from typing import Any

from ..errors.exceptions import CircuitOpenError
from ..policies.circuit_breaker import BreakerPermit, CircuitBreaker, CircuitState
from ._store import FlagStore, StateStoreUnavailableError, loop_running

logger = logging.getLogger("langchain_ailib_resilience.state")


class SharedCircuitBreaker(CircuitBreaker):
    """A ``CircuitBreaker`` whose openings are published to, and honoured from, a shared ``FlagStore``.

    Example::

        breaker = SharedCircuitBreaker(redis_store(url), "ailib:cb:{openai/gpt-4o}", failure_threshold=5)

    Args are ``CircuitBreaker``'s plus ``store``, ``key``, ``refresh`` (seconds a read of the flag is reused)
    and ``store_backoff`` (seconds to stop asking a store that failed).
    """

    def __init__(
        self, store: FlagStore, key: str, *, refresh: float = 0.5, store_backoff: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.key = key
        self.refresh = refresh
        self.store_backoff = store_backoff
        self._next_read = -math.inf
        self._remote_until = 0.0
        self._store_down = False
        self._reading: asyncio.Future[None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self.add_listener(self._publish_open)

    def _publish_open(self, name: str, old: CircuitState, new: CircuitState) -> None:
        if new is not CircuitState.OPEN:
            return
        left = super().cooldown_remaining
        if not (0 < left < math.inf):  # forced open is this process's own business
            return
        if loop_running():
            self._background(self._araise(left))
            return
        try:
            self.store.raise_flag(self.key, left)
        except StateStoreUnavailableError as exc:
            self._note_store_down(exc)

    async def _araise(self, seconds: float) -> None:
        try:
            await self.store.araise_flag(self.key, seconds)
        except StateStoreUnavailableError as exc:
            self._note_store_down(exc)

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    def _note_store_down(self, exc: StateStoreUnavailableError) -> None:
        self._next_read = self._clock.now() + self.store_backoff
        if not self._store_down:
            self._store_down = True
            logger.warning(
                "circuit %r: shared state store %r unreachable (%s); breaker state is local until it answers",
                self.name, self.store, exc,
            )  # fmt: skip

    def remote_open_for(self) -> float:
        """Seconds another process's opening still holds (0.0 when none, or when the store is unreachable).

        On an event loop's thread a due read is started as a task and the last known value is returned.
        """
        now = self._clock.now()
        if now >= self._next_read:
            self._next_read = now + self.refresh
            if loop_running():
                self._start_read()
            else:
                try:
                    left = self.store.flag_remaining(self.key)
                except StateStoreUnavailableError as exc:
                    self._note_store_down(exc)
                    left = 0.0
                else:
                    self._store_down = False
                self._remote_until = now + left
        return max(0.0, self._remote_until - now)

    @property
    def read_due(self) -> bool:
        """Whether the next ``admit`` would ask the store (the cached read is older than ``refresh``)."""
        return self._reading is not None or self._clock.now() >= self._next_read

    async def arefresh(self) -> None:
        """Read the shared flag through the store's async client if the cached read is stale (one read at a
        time; concurrent callers share it). Call before ``admit`` on an async path."""
        if self._reading is None and self._clock.now() >= self._next_read:
            self._next_read = self._clock.now() + self.refresh
            self._start_read()
        if self._reading is not None:
            await asyncio.shield(self._reading)

    def _start_read(self) -> None:
        if self._reading is None:
            self._reading = self._background(self._aread())

    async def _aread(self) -> None:
        try:
            left = await self.store.aflag_remaining(self.key)
        except StateStoreUnavailableError as exc:
            self._note_store_down(exc)
            left = 0.0
        else:
            self._store_down = False
        finally:
            self._reading = None
        self._remote_until = self._clock.now() + left

    def admit(self) -> BreakerPermit:
        """Admit or raise ``CircuitOpenError``: open here, or (while closed here) open on another worker."""
        remote = self.remote_open_for()
        if remote > 0 and super().state is CircuitState.CLOSED:
            with self._lock:
                self.rejected_total += 1
            raise CircuitOpenError(
                f"circuit {self.name!r} is open on another worker; cooldown ends in {remote:.3f}s",
                target=self.name,
                retry_after=remote,
            )
        return super().admit()

    @property
    def state(self) -> CircuitState:
        """This process's state, reading open while another worker's opening holds."""
        local = super().state
        if local is CircuitState.CLOSED and self.remote_open_for() > 0:
            return CircuitState.OPEN
        return local

    @property
    def cooldown_remaining(self) -> float:
        return max(super().cooldown_remaining, self.remote_open_for())
