"""Opening on one worker opens the circuit for all (``share_breaker_state=True``): a flag with a TTL.

Deliberately simple: when this process's breaker opens, it raises the flag ``ailib:cb:{target}`` for its
cooldown; every process's ``admit()`` consults that flag (cached for ``refresh`` seconds, so at most one store
read per interval) and, while it is up and its own breaker is closed, rejects with ``CircuitOpenError`` as if
open. Half-open probing stays with the process that opened: when its cooldown ends the flag expires, the others
resume, and a failed probe raises the flag again. A store that does not answer never blocks calls: the flag
reads as down and is asked again after ``store_backoff``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..errors.exceptions import CircuitOpenError
from ..policies.circuit_breaker import BreakerPermit, CircuitBreaker, CircuitState
from ._store import FlagStore, StateStoreUnavailableError

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
        self.add_listener(self._publish_open)

    def _publish_open(self, name: str, old: CircuitState, new: CircuitState) -> None:
        if new is not CircuitState.OPEN:
            return
        left = super().cooldown_remaining
        if not (0 < left < math.inf):  # forced open is this process's own business
            return
        try:
            self.store.raise_flag(self.key, left)
        except StateStoreUnavailableError as exc:
            self._note_store_down(exc)

    def _note_store_down(self, exc: StateStoreUnavailableError) -> None:
        self._next_read = self._clock.now() + self.store_backoff
        if not self._store_down:
            self._store_down = True
            logger.warning(
                "circuit %r: shared state store %r unreachable (%s); breaker state is local until it answers",
                self.name, self.store, exc,
            )  # fmt: skip

    def remote_open_for(self) -> float:
        """Seconds another process's opening still holds (0.0 when none, or when the store is unreachable)."""
        now = self._clock.now()
        if now >= self._next_read:
            self._next_read = now + self.refresh
            try:
                left = self.store.flag_remaining(self.key)
            except StateStoreUnavailableError as exc:
                self._note_store_down(exc)
                left = 0.0
            else:
                self._store_down = False
            self._remote_until = now + left
        return max(0.0, self._remote_until - now)

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
