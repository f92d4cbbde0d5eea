"""Circuit breaker: closed → open → half-open, with bounded probes and generation-tagged outcomes.

- ``consecutive`` mode opens after ``failure_threshold`` consecutive provider failures; ``failure_rate`` mode
  opens when, over a sliding time window with at least ``minimum_calls`` calls, the failure share reaches the
  threshold.
- Open rejects at once (``CircuitOpenError`` with the cooldown left); after the cooldown the state *reads*
  half-open (computed from the clock) and admits at most ``half_open_max_calls`` concurrent probes.
- Every admission carries the breaker's generation; outcomes from an earlier generation are ignored (Polly #217).
- Only failures that indict the provider count (``StandardErrorCode.indicts_provider``); caller errors are neutral.
- Listeners get exactly one call per state change, outside the lock; and the caller whose admission or outcome
  caused a change is told of it directly (``BreakerPermit.transition``, the ``Transition`` that ``record_*``
  return), so nobody has to compare state before and after.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..config import BreakerMode
from ..errors.codes import StandardErrorCode
from ..errors.exceptions import CircuitOpenError


class CircuitState(StrEnum):
    """Breaker state; equal to the plain strings ``"closed"``, ``"open"``, ``"half_open"``."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Transition = tuple[CircuitState, CircuitState]
"""``(from_state, to_state)`` of one change of a breaker's state."""


@dataclass(frozen=True, slots=True)
class BreakerPermit:
    """Proof of admission: which generation admitted the call, whether it is a half-open probe, and the change
    this admission itself made (open → half-open), if any."""

    generation: int
    probe: bool = False
    transition: Transition | None = None


StateListener = Callable[[str, CircuitState, CircuitState], None]


class CircuitBreaker:
    """A circuit breaker for one target. Usable alone::

        breaker = CircuitBreaker(failure_threshold=5, cooldown_seconds=30)
        permit = breaker.admit()              # raises CircuitOpenError when open
        try:
            result = call()
        except Exception as exc:
            breaker.record_failure(permit, classify_error(exc).code)
            raise
        breaker.record_success(permit)

    or ``breaker.call(fn)`` / ``await breaker.acall(fn)``, which do the same.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 30.0,
        *,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        mode: BreakerMode = "consecutive",
        failure_rate_threshold: float = 0.5,
        window_seconds: float = 60.0,
        minimum_calls: int = 10,
        cooldown_multiplier: float = 1.0,
        max_cooldown_seconds: float = 300.0,
        quota_cooldown_seconds: float | None = None,
        clock: Clock | None = None,
        name: str = "circuit_breaker",
    ) -> None:
        from ..config import CircuitBreakerConfig

        # Validate through the config model so both entry points give the same messages.
        self.config = CircuitBreakerConfig(
            failure_threshold=failure_threshold,
            cooldown_seconds=cooldown_seconds,
            half_open_max_calls=half_open_max_calls,
            success_threshold=success_threshold,
            mode=mode,
            failure_rate_threshold=failure_rate_threshold,
            window_seconds=window_seconds,
            minimum_calls=minimum_calls,
            cooldown_multiplier=cooldown_multiplier,
            max_cooldown_seconds=max_cooldown_seconds,
            quota_cooldown_seconds=quota_cooldown_seconds,
        )
        self.name = name
        self._consecutive = mode == "consecutive"  # (read on every success)
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self.generation = 0  # bumped on every state change; admissions carry it so stale outcomes are told apart
        self._closed_permit = BreakerPermit(0)
        self._consecutive_failures = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        self._opened_at = 0.0
        self._cooldown = self.config.cooldown_seconds
        self._reopen_count = 0
        self._forced_open = False
        self._disabled = False  # CircuitBreakerConfig(enabled=False): outcomes never open it
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._listeners: list[StateListener] = []
        self.opened_total = 0
        self.rejected_total = 0

    @classmethod
    def from_config(cls, config: Any, *, clock: Clock | None = None, name: str = "circuit_breaker") -> CircuitBreaker:
        data = config.model_dump(exclude={"enabled"})
        breaker = cls(**data, clock=clock, name=name)
        breaker._disabled = not config.enabled
        return breaker

    # --- listeners ----------------------------------------------------------------------------------------

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(name, old_state, new_state)`` once per state change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        self._listeners.remove(listener)

    def _notify(self, changes: list[tuple[CircuitState, CircuitState]]) -> None:
        for old, new in changes:
            for listener in list(self._listeners):
                listener(self.name, old, new)

    # --- transitions (lock held; return the change for notification) -------------------------------------

    def _transition(self, new: CircuitState, changes: list[tuple[CircuitState, CircuitState]]) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self.generation += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        if new is CircuitState.CLOSED:
            self._closed_permit = BreakerPermit(self.generation)
            self._consecutive_failures = 0
            self._window.clear()
            self._window_failures = 0
            self._reopen_count = 0
            self._cooldown = self.config.cooldown_seconds
        elif new is CircuitState.OPEN:
            self._opened_at = self._clock.now()
            self.opened_total += 1
        changes.append((old, new))

    def _open(self, changes: list[tuple[CircuitState, CircuitState]], *, from_probe: bool) -> None:
        if from_probe:
            self._reopen_count += 1
            grown = self.config.cooldown_seconds * self.config.cooldown_multiplier**self._reopen_count
            self._cooldown = min(self.config.max_cooldown_seconds, grown)
        self._transition(CircuitState.OPEN, changes)

    def _refresh(self, changes: list[tuple[CircuitState, CircuitState]]) -> None:
        """Open turns half-open once the cooldown has passed: state is derived from the clock when read."""
        if (
            self._state is CircuitState.OPEN
            and not self._forced_open
            and self._clock.now() - self._opened_at >= self._cooldown
        ):
            self._transition(CircuitState.HALF_OPEN, changes)

    # --- admission ----------------------------------------------------------------------------------------

    def admit(self) -> BreakerPermit:
        """Admit a call or raise ``CircuitOpenError`` (never blocks)."""
        if self._state is CircuitState.CLOSED:  # lock-free fast path: reading one attribute is atomic
            return self._closed_permit
        changes: list[tuple[CircuitState, CircuitState]] = []
        try:
            with self._lock:
                self._refresh(changes)
                state: CircuitState = self._state
                if state is CircuitState.CLOSED:
                    return self._closed_permit
                if state is CircuitState.HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls:
                    self._probes_in_flight += 1
                    return BreakerPermit(self.generation, probe=True, transition=changes[-1] if changes else None)
                self.rejected_total += 1
                if state is CircuitState.OPEN:
                    left = None if self._forced_open else max(0.0, self._opened_at + self._cooldown - self._clock.now())
                    message = f"circuit {self.name!r} is open" + (
                        " (forced)" if self._forced_open else f"; cooldown ends in {left:.3f}s"
                    )
                else:
                    left = None
                    message = (
                        f"circuit {self.name!r} is half-open and its {self.config.half_open_max_calls} "
                        "probe(s) are in flight"
                    )
                raise CircuitOpenError(message, target=self.name, retry_after=left)
        finally:
            if changes:
                self._notify(changes)

    def record_success(self, permit: BreakerPermit) -> Transition | None:
        """The provider answered well. Returns the state change this caused, if any."""
        if permit is self._closed_permit and self._consecutive and not self._consecutive_failures:
            return None  # fast path: nothing to reset
        return self._record(permit, failed=False)

    def record_failure(self, permit: BreakerPermit, code: StandardErrorCode | None = None) -> Transition | None:
        """The call failed with ``code``; only provider-indicting codes count (``None`` counts as a failure).
        Returns the state change this caused, if any.

        A spent quota (E2002) opens the circuit for ``quota_cooldown_seconds`` when that is set.
        """
        if code is StandardErrorCode.QUOTA_EXHAUSTED and self.config.quota_cooldown_seconds is not None:
            return self._hold_open(permit, self.config.quota_cooldown_seconds)
        if code is not None and not code.indicts_provider:
            self.release(permit)
            return None
        return self._record(permit, failed=True)

    def release(self, permit: BreakerPermit) -> None:
        """The call ended without a verdict on the provider (caller error, cancellation): free a probe slot."""
        if not permit.probe:
            return
        with self._lock:
            if permit.generation == self.generation and self._probes_in_flight > 0:
                self._probes_in_flight -= 1

    def _record(self, permit: BreakerPermit, *, failed: bool) -> Transition | None:
        if self._disabled:
            return None
        changes: list[tuple[CircuitState, CircuitState]] = []
        with self._lock:
            if permit.generation != self.generation:
                return None  # admitted before the last state change: its outcome says nothing about now
            if self._state is CircuitState.HALF_OPEN:
                if permit.probe and self._probes_in_flight > 0:
                    self._probes_in_flight -= 1
                if failed:
                    self._open(changes, from_probe=True)
                else:
                    self._probe_successes += 1
                    if self._probe_successes >= self.config.success_threshold:
                        self._transition(CircuitState.CLOSED, changes)
            elif self._state is CircuitState.CLOSED:
                if self.config.mode == "consecutive":
                    self._consecutive_failures = self._consecutive_failures + 1 if failed else 0
                    if self._consecutive_failures >= self.config.failure_threshold:
                        self._open(changes, from_probe=False)
                else:
                    if failed:
                        self._consecutive_failures += 1
                    else:
                        self._consecutive_failures = 0
                    if self._window_record(failed):
                        self._open(changes, from_probe=False)
        if changes:
            self._notify(changes)
            return changes[-1]
        return None

    def _hold_open(self, permit: BreakerPermit, seconds: float) -> Transition | None:
        """Open (or keep open) for at least ``seconds`` from now, whatever the state and the permit's age: a spent
        quota is a fact about the account, not a sample of the provider's health."""
        if self._disabled:
            self.release(permit)
            return None
        changes: list[tuple[CircuitState, CircuitState]] = []
        with self._lock:
            if permit.probe and permit.generation == self.generation and self._probes_in_flight > 0:
                self._probes_in_flight -= 1
            now = self._clock.now()
            if self._state is CircuitState.OPEN:
                if not self._forced_open and self._opened_at + self._cooldown < now + seconds:
                    self._opened_at, self._cooldown = now, seconds
            else:
                self._cooldown = seconds
                self._transition(CircuitState.OPEN, changes)
        if changes:
            self._notify(changes)
            return changes[-1]
        return None

    def _window_record(self, failed: bool) -> bool:
        now = self._clock.now()
        self._window.append((now, failed))
        self._window_failures += failed
        horizon = now - self.config.window_seconds
        while self._window and self._window[0][0] <= horizon:
            _, old_failed = self._window.popleft()
            self._window_failures -= old_failed
        calls = len(self._window)
        return (
            failed
            and calls >= self.config.minimum_calls
            and self._window_failures / calls >= self.config.failure_rate_threshold
        )

    # --- manual control -----------------------------------------------------------------------------------

    def force_open(self) -> None:
        """Isolate the target until ``reset()``: every call is rejected, no half-open probing."""
        changes: list[tuple[CircuitState, CircuitState]] = []
        with self._lock:
            self._forced_open = True
            self._transition(CircuitState.OPEN, changes)
        self._notify(changes)

    def reset(self) -> None:
        """Close the circuit and forget all counts (also ends a ``force_open``)."""
        changes: list[tuple[CircuitState, CircuitState]] = []
        with self._lock:
            self._forced_open = False
            self._transition(CircuitState.CLOSED, changes)
            self._consecutive_failures = 0
            self._window.clear()
            self._window_failures = 0
        self._notify(changes)

    # --- convenience wrappers -----------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` under the breaker; errors are classified to decide whether they count."""
        from ..errors.classify import classify_error

        permit = self.admit()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.record_failure(permit, classify_error(exc).code)
            raise
        except BaseException:
            self.release(permit)
            raise
        self.record_success(permit)
        return result

    async def acall(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Async ``call``: ``await breaker.acall(coro_fn, ...)``."""
        from ..errors.classify import classify_error

        permit = self.admit()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self.record_failure(permit, classify_error(exc).code)
            raise
        except BaseException:
            self.release(permit)
            raise
        self.record_success(permit)
        return result

    # --- reading ------------------------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state, turning open into half-open when the cooldown has passed."""
        if self._state is CircuitState.CLOSED:
            return CircuitState.CLOSED
        changes: list[tuple[CircuitState, CircuitState]] = []
        with self._lock:
            self._refresh(changes)
            state = self._state
        if changes:
            self._notify(changes)
        return state

    @property
    def failure_count(self) -> int:
        """Consecutive provider failures counted in the closed state."""
        return self._consecutive_failures

    @property
    def cooldown_remaining(self) -> float:
        """Seconds until an open circuit turns half-open (0 when not open; inf when forced open)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            if self._forced_open:
                return float("inf")
            return max(0.0, self._opened_at + self._cooldown - self._clock.now())

    @property
    def probes_in_flight(self) -> int:
        return self._probes_in_flight

    def window_counts(self) -> tuple[int, int]:
        """(calls, failures) in the failure-rate window (failure_rate mode)."""
        with self._lock:
            return len(self._window), self._window_failures

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"
