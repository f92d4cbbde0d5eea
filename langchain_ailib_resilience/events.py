"""Events: what the resilience layer decided, from every entry point, in one shape.

Kinds and when they are emitted (``target`` is always the target concerned, ``attempt`` 1-based):

- ``attempt``: an attempt passed the gate and its request is about to be sent (``detail``: ``provider``,
  ``model`` where known). Each attempt ends with exactly one of ``retry``, ``give_up``, ``success`` or a
  ``failure``;
- ``retry``: the attempt failed and the same target is tried again after ``delay`` seconds (``code``);
- ``give_up``: the attempt failed and this target is not tried again (``detail["reason"]``);
- ``rejected``: the gate refused (open circuit, rate-limit wait past its bound, in-flight limit full, no time
  left): nothing was sent (``detail["reason"]``: ``circuit_open`` | ``rate_limit`` | ``inflight_full`` |
  ``deadline``);
- ``fallback``: the call moves on to ``detail["next_target"]``;
- ``rate_limit_wait``: the gate waited ``delay`` seconds for a rate token or an in-flight permit;
- ``state_change``: a circuit changed state (``detail["from_state"]``, ``detail["to_state"]``). Process-wide
  subscribers hear each transition once, from the breaker itself, whoever caused it; a call's listeners hear
  the transitions that call caused;
- ``success``: the call ended with an answer (a stream: when it ended, or when its consumer closed it, with
  ``detail["closed_early"]``);
- ``failure``: the call ended without one (``code``; ``detail["mid_stream"]`` for a stream that broke after
  its first chunk, which also ends that attempt).

``attempt`` and ``success`` are the happy path: they are built only for a call's observers (``observe_calls``:
instrumentation such as OpenTelemetry, which needs each attempt's start and end), so a call nobody observes
builds no event at all. Every other kind (the decisions, and ``failure``) reaches the executor's and the
call's listeners, the observers, and the process-wide subscribers. A cancelled call's ``failure`` (code
``cancelled``) is for observers only: the caller sees the cancellation itself.

Listeners are plain callables taking a ``ResilienceEvent``. Three ways to receive them:

- per executor or per call (``ResilientExecutor(listeners=...)``, ``add_listener``);
- process-wide, every emitted event of every entry point: ``subscribe(listener)`` (logging, the live view);
- per call from a factory: ``observe_calls(factory)``, where ``factory()`` is asked at the start of every call
  for a listener of that call's events (or ``None``), so per-call state (an OpenTelemetry span) needs no
  lookup table. Callers obtain them with ``call_listeners()``.

A listener that raises is logged and never breaks a call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Self, TypeVar

from .errors.codes import StandardErrorCode

EventKind = Literal[
    "attempt",
    "success",
    "failure",
    "retry",
    "fallback",
    "rejected",
    "state_change",
    "rate_limit_wait",
    "give_up",
]

logger = logging.getLogger("langchain_ailib_resilience")


@dataclass(frozen=True, slots=True)
class ResilienceEvent:
    """Something worth telling about one call.

    ``kind``: what happened; ``target``: which target; ``attempt``: attempt number on that target (1-based);
    ``code``: the error's code where there is one; ``delay``: the wait before a retry, or the time waited for
    a token (seconds); ``error``: the normalised error; ``detail``: extra fields (``from_state``/``to_state``,
    ``next_target``, ``reason``...).
    """

    kind: EventKind
    target: str
    attempt: int = 0
    code: StandardErrorCode | None = None
    delay: float | None = None
    error: BaseException | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (no exception objects), for custom events and logs."""
        data: dict[str, Any] = {"kind": self.kind, "target": self.target, "attempt": self.attempt}
        if self.code is not None:
            data["code"] = self.code.value
            data["error_name"] = self.code.error_name
        if self.delay is not None:
            data["delay"] = self.delay
        if self.error is not None:
            data["message"] = str(self.error)  # ResilienceError messages are redacted when built
        data.update(self.detail)
        return data


EventListener = Callable[[ResilienceEvent], None]
CallObserver = Callable[[], EventListener | None]

_lock = threading.Lock()


H = TypeVar("H")


class _Hooks(Generic[H]):
    """A copy-on-write tuple of hooks: readers on hot paths take one attribute read and no lock."""

    __slots__ = ("all",)

    def __init__(self) -> None:
        self.all: tuple[H, ...] = ()

    def add(self, hook: H) -> Callable[[], None]:
        """Add ``hook``; returns the function that removes it."""
        with _lock:
            self.all = (*self.all, hook)

        def remove() -> None:
            with _lock:
                self.all = tuple(h for h in self.all if h is not hook)

        return remove


_subscribers: _Hooks[EventListener] = _Hooks()
_observers: _Hooks[CallObserver] = _Hooks()
_hearing: dict[EventListener, Callable[[EventKind], bool]] = {}
"""A subscriber's ``hears`` (see ``subscribe``)."""


def subscribe(listener: EventListener, *, hears: Callable[[EventKind], bool] | None = None) -> Callable[[], None]:
    """Receive every event emitted anywhere in this process; returns a function that unsubscribes.

    ``hears(kind)``, if given, says whether ``listener`` would do anything with an event of that kind now (a
    logger below the event's level would not): an optional event nobody hears is then not built at all."""
    if hears is not None:
        _hearing[listener] = hears
    undo = _subscribers.add(listener)

    def unsubscribe() -> None:
        undo()
        if listener not in _subscribers.all:
            _hearing.pop(listener, None)

    return unsubscribe


def subscribed(kind: EventKind | None = None) -> bool:
    """Whether any process-wide subscriber listens (to ``kind``, if given): else an event nobody else hears
    need not be built."""
    for listener in _subscribers.all:
        hears = _hearing.get(listener)
        if hears is None or kind is None or hears(kind):
            return True
    return False


def observe_calls(observer: CallObserver) -> Callable[[], None]:
    """Ask ``observer()`` at the start of every call for a listener of that call; returns an undo function."""
    return _observers.add(observer)


class Hook:
    """A hook into the stream that is turned on and off: ``install()`` once, ``uninstall()`` undoes it."""

    _undo: Callable[[], None] | None = None

    def _attach(self) -> Callable[[], None]:
        """Register the hook (``subscribe`` or ``observe_calls``); return its undo."""
        raise NotImplementedError

    def install(self) -> Self:
        if self._undo is None:
            self._undo = self._attach()
        return self

    def uninstall(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None


def call_listeners() -> tuple[EventListener, ...]:
    """The per-call listeners the registered observers want for a call starting now (usually none)."""
    observers = _observers.all
    if not observers:
        return ()
    found: tuple[EventListener, ...] = ()
    for observer in observers:
        try:
            listener = observer()
        except Exception:
            logger.exception("resilience call observer %r failed", observer)
            continue
        if listener is not None:
            found = (*found, listener)
    return found


def emit(listeners: Iterable[EventListener], event: ResilienceEvent, *, subscribers: bool = True) -> None:
    """Deliver ``event`` to ``listeners`` (the call's own), then to every process-wide subscriber."""
    for listener in listeners:
        _deliver(listener, event)
    if subscribers:
        for listener in _subscribers.all:
            _deliver(listener, event)


def publish(event: ResilienceEvent) -> None:
    """Deliver an event that belongs to no call's listeners (a breaker's transition, a gate's decision)."""
    for listener in _subscribers.all:
        _deliver(listener, event)


def publish_transition(target: str, from_state: object, to_state: object) -> None:
    """A breaker's state listener: its transition, once, to every process-wide subscriber."""
    if _subscribers.all:
        detail = {"from_state": str(from_state), "to_state": str(to_state)}
        publish(ResilienceEvent("state_change", target, detail=detail))


def _deliver(listener: EventListener, event: ResilienceEvent) -> None:
    try:
        listener(event)
    except Exception:  # a broken listener must not break the call it observes
        logger.exception("resilience event listener %r failed on %s", listener, event.kind)


def rejection_reason(error: BaseException) -> str:
    """Why the gate refused: ``circuit_open``, ``rate_limit``, ``inflight_full``, ``deadline`` or ``other``."""
    from .errors.exceptions import BackpressureError, CircuitOpenError, DeadlineExceededError, RateLimitExceededError

    if isinstance(error, CircuitOpenError):
        return "circuit_open"
    if isinstance(error, RateLimitExceededError):
        return "rate_limit"
    if isinstance(error, BackpressureError):
        return "inflight_full"
    if isinstance(error, DeadlineExceededError):
        return "deadline"
    return "other"


__all__ = [
    "CallObserver",
    "EventKind",
    "EventListener",
    "Hook",
    "ResilienceEvent",
    "call_listeners",
    "emit",
    "observe_calls",
    "publish",
    "publish_transition",
    "rejection_reason",
    "subscribe",
]
