"""Resilience decisions through ``logging``, the way stamina instruments retries.

One logger, ``langchain_ailib_resilience``, subscribed to every event of every entry point:

- WARNING: a circuit opened;
- INFO: a retry was scheduled (with its wait and code); a call fell back to another target; a circuit turned
  half-open or closed; the gate refused a request; a target was given up; a call failed;
- DEBUG: waits for a rate token or an in-flight permit.

The library adds no handler, so by default only the warnings (a circuit opened) reach stderr, through
Python's last-resort handler, and only when the application has configured no logging of its own. Every
record carries the event as ``record.resilience`` (``ResilienceEvent.as_dict()``) for structured handlers.
Messages hold target names, codes and numbers; an error's message is redacted before it is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import events
from ..errors.redact import redact
from ..events import EventKind, ResilienceEvent

logger = logging.getLogger("langchain_ailib_resilience")


def _code(event: ResilienceEvent) -> str:
    return f"{event.code.error_name} ({event.code.value})" if event.code is not None else "no code"


def _describe(event: ResilienceEvent) -> tuple[int, str, tuple[object, ...]] | None:
    kind = event.kind
    if kind == "retry":
        return (
            logging.INFO,
            "retrying %s (attempt %d failed: %s) in %.3fs",
            (
                event.target,
                event.attempt,
                _code(event),
                event.delay or 0.0,
            ),
        )
    if kind == "fallback":
        return (
            logging.INFO,
            "falling back from %s to %s after %s",
            (
                event.target,
                event.detail.get("next_target"),
                _code(event),
            ),
        )
    if kind == "state_change":
        to_state = event.detail.get("to_state")
        level = logging.WARNING if to_state == "open" else logging.INFO
        return level, "circuit %s: %s -> %s", (event.target, event.detail.get("from_state", "?"), to_state)
    if kind == "rejected":
        return (
            logging.INFO,
            "%s refused a request before sending it: %s, %s",
            (
                event.target,
                event.detail.get("reason", "other"),
                _code(event),
            ),
        )
    if kind == "give_up":
        return (
            logging.INFO,
            "giving up on %s after attempt %d: %s (%s)",
            (
                event.target,
                event.attempt,
                _code(event),
                event.detail.get("reason"),
            ),
        )
    if kind == "failure":
        where = " mid-stream" if event.detail.get("mid_stream") else ""
        message = redact(str(event.error)) if event.error is not None else ""
        return logging.INFO, "call to %s failed%s: %s %s", (event.target, where, _code(event), message)
    if kind == "rate_limit_wait":
        return logging.DEBUG, "waited %.3fs for %s's rate limit or in-flight limit", (event.delay or 0.0, event.target)
    return None  # attempt, success: the happy path is not logged


def hears(kind: EventKind) -> bool:
    """Whether an event of ``kind`` could be written now (the levels of ``_describe``)."""
    if kind == "rate_limit_wait":
        return logger.isEnabledFor(logging.DEBUG)
    return logger.isEnabledFor(logging.WARNING if kind == "state_change" else logging.INFO)


def log_event(event: ResilienceEvent) -> None:
    """The subscriber: one record per decision, at the level above."""
    if not hears(event.kind):
        return  # the common case with default logging: nothing would be written, nothing is formatted
    described = _describe(event)
    if described is None:
        return
    level, message, args = described
    if logger.isEnabledFor(level):
        logger.log(level, message, *args, extra={"resilience": _safe_dict(event)})


def _safe_dict(event: ResilienceEvent) -> dict[str, object]:
    data = event.as_dict()
    if "message" in data:
        data["message"] = redact(str(data["message"]))
    return data


_undo: Callable[[], None] | None = None


def install_logging() -> None:
    """Subscribe the logger to every event (done when the package is imported)."""
    global _undo
    if _undo is None:
        _undo = events.subscribe(log_event, hears=hears)


def uninstall_logging() -> None:
    global _undo
    if _undo is not None:
        _undo()
        _undo = None
