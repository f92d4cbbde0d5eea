"""Events the executor emits: retries, fallbacks, breaker state changes, local rejections, waits.

Listeners are plain callables taking a ``ResilienceEvent``. Integrations turn them into LangChain callbacks
(``on_retry``, custom events) or logs. A listener that raises is logged and never breaks a call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

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
    ``code``: the error's code where there is one; ``delay``: the wait before a retry (seconds);
    ``error``: the normalised error; ``detail``: extra fields (``from_state``/``to_state``, ``next_target``...).
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
            data["message"] = str(self.error)
        data.update(self.detail)
        return data


EventListener = Callable[[ResilienceEvent], None]


def emit(listeners: Iterable[EventListener], event: ResilienceEvent) -> None:
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken listener must not break the call it observes
            logger.exception("resilience event listener %r failed on %s", listener, event.kind)
