"""A rate token leaves with its request: the moment a granted request is handed to the wire, its limiter counts
the spacing from then, not from the grant.

Between our grant and the bytes leaving, LiteLLM spends 3-7 ms of CPU on the event loop, more when other
callers' answers are being parsed meanwhile; a provider enforcing a strict spacing sees the spacing of
*departures*, so a request held a few ms after its grant and the next one sent on time arrive too close (the
2-4 % of 429s at a strict 20/s provider). A grant notes itself in a context variable (the task's or thread's
own, so concurrent callers never mix); the integration that sees the request leave (LiteLLM's pre-API-call
hook) calls ``departed()``, and the limiter re-counts (``RateLimiter.departed``). Nothing happens where no
such hook runs, and nothing is noted until one is installed (``enable()``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class Departs(Protocol):
    def departed(self, granted_at: float) -> None: ...


_GRANT: ContextVar[tuple[Departs, float] | None] = ContextVar("ailib_resilience_grant", default=None)
enabled = False
"""Set by the first integration that can see departures; until then a grant notes nothing (one global read)."""


def enable() -> None:
    global enabled
    enabled = True


def granted(limiter: Departs, at: float) -> None:
    """A rate token was granted at ``at`` (the limiter's clock) to the request this context is about to send."""
    _GRANT.set((limiter, at))


def departed() -> None:
    """The request granted last in this context is leaving now (once: a second call, or none noted, is a no-op)."""
    grant = _GRANT.get()
    if grant is not None:
        _GRANT.set(None)
        limiter, at = grant
        limiter.departed(at)
