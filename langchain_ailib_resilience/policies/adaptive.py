"""A target's request rate, learned: from the provider's rate-limit headers, from its 429s, and its timing.

Three inputs set the rate a target's limiter paces at (``effective``), after a slow start:

- **slow start** (``adaptive=True``, no ``requests_per_second``): with nothing known the limiter starts at
  ``START_RATE`` (burst 1, so 60 callers do not go at once into an unknown limit) and doubles per answer, never
  above ``START_GAIN`` times what the provider has been seen to answer (a provider's burst hides its limit for a
  while; growth bounded by the answers cannot run away meanwhile); the first 429 or stated limit ends it;

- **headers** (``adaptive=True``): a stated limit (OpenAI ``x-ratelimit-limit-requests``, Anthropic
  ``anthropic-ratelimit-requests-limit``, per minute) becomes the rate, at most the configured
  ``requests_per_second`` (the ceiling);
- **429 feedback** (``adaptive=True``, where no limit is stated, e.g. Azure): AIMD. A rate-limited answer cuts
  the rate to ``DECREASE`` of what the provider let through over its last ``ANSWERS`` answers (at most halving
  what was allowed in one cut; at most once per ``COOLDOWN`` seconds, so one wave of 429s from requests already
  in flight counts once); each success probes upward by ``PROBE`` req/s (answers come at about the rate, so
  that is ``PROBE`` of the rate per second: 5 %/s); never above the ceiling or a stated
  limit, never below ``FLOOR``;
- **timing** (at a known limit: configured or stated): a 429 whose Retry-After is shorter than ``SHORT`` says
  "strict spacing, you are early (by the Retry-After)": the spacing widens by that much (the rate is divided by
  ``1 + margin``; at least ``MARGIN_STEP``; earlier than ``MAX_MARGIN_STEP`` of the spacing is a stall no margin
  covers, which widens it by ``MARGIN_STEP`` only; up to ``MAX_MARGIN`` in all), and narrows
  again by ``MARGIN_STEP / MARGIN_DECAY`` per success, so the margin settles where about one answer in
  ``MARGIN_DECAY`` is early.

The 429s the pacer acts on (``absorbs``) do not count toward the target's breaker: a healthy provider shaping a
burst of 60 callers must not open the circuit on them (the breaker still opens on outages, overload, timeouts).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Literal

from ..clock import Clock
from ..errors.rate_headers import RateLimitHeaders
from .rate_limiter import RateLimiter

RateSource = Literal["configured", "headers", "429-feedback", "unlearned"]

DECREASE = 0.9
PROBE = 0.05
COOLDOWN = 1.0
FLOOR = 1.0 / 60.0
SHORT = 0.1
WINDOW = 2.0
ANSWERS = 20
"""What the provider lets through is measured over its last ``ANSWERS`` answers, at most ``WINDOW`` s old."""
MARGIN_STEP = 0.01
MAX_MARGIN_STEP = 0.05
MARGIN_DECAY = 50.0
MAX_MARGIN = 0.25
UNLEARNED_RATE = 1000.0
"""The highest rate a slow start reaches when nothing is configured or learned: in effect no limit."""
START_RATE = 5.0
"""Where a slow start begins (req/s): the first request goes at once, the next ones as answers come back."""
START_GAIN = 2.0


class AdaptiveRate:
    """The learned rate of one target's ``limiter``; every change is applied to it with ``set_limits``.

    ``ceiling``: the configured ``requests_per_second`` (``None``: none). ``adaptive``: learn from headers and
    429s; without it only the spacing margin is learned. ``burst``: the bucket once a rate is learned.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        clock: Clock,
        *,
        ceiling: float | None,
        adaptive: bool,
        burst: int,
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.ceiling = ceiling
        self.adaptive = adaptive
        self.burst = burst
        self.stated: float | None = None  # req/s from headers
        self.stated_by: str | None = None
        self.aimd: float | None = None  # req/s from 429 feedback
        self.margin = 0.0
        self.strict = False
        """The provider has shown it enforces a strict spacing (a few-ms-early 429): from then on the spacing is
        counted from each request's departure (``departures``); a tolerant provider's burst absorbs the few ms
        between grant and send, and counting them there only cost 1 % of goodput."""
        self.probing: float | None = START_RATE if adaptive and ceiling is None else None
        """The slow start's rate while nothing is known; ``None`` once a 429 or a stated limit ended it."""
        self._last_decrease = -math.inf
        self._done: deque[float] = deque(maxlen=ANSWERS)  # completion times: what the provider lets through
        self._lock = threading.Lock()
        self._applied = limiter.rate
        if self.probing is not None:
            self._apply()

    # --- reading ------------------------------------------------------------------------------------------

    def _bound(self) -> float | None:
        """The highest rate allowed: the ceiling and the stated limit, whichever is lower."""
        bounds = [b for b in (self.ceiling, self.stated) if b is not None]
        return min(bounds) if bounds else None

    @property
    def learned(self) -> float | None:
        """The rate before the spacing margin (``None``: nothing configured or learned)."""
        bound = self._bound()
        if self.aimd is None:
            return bound
        return self.aimd if bound is None else min(bound, self.aimd)

    @property
    def source(self) -> RateSource:
        bound = self._bound()
        if self.aimd is not None and (bound is None or self.aimd < bound):
            return "429-feedback"
        if self.stated is not None and (self.ceiling is None or self.stated <= self.ceiling):
            return "headers"
        return "configured" if self.ceiling is not None else "unlearned"

    def _allowed(self) -> float:
        """The rate before the spacing margin: the learned one, else the slow start's, else in effect no limit."""
        learned = self.learned
        if learned is not None:
            return learned
        return UNLEARNED_RATE if self.probing is None else self.probing

    @property
    def effective(self) -> float:
        return self._allowed() / (1.0 + self.margin)

    # --- learning -----------------------------------------------------------------------------------------

    def _apply(self) -> None:
        rate = self.effective
        if rate != self._applied:
            self._applied = rate
            burst = self.limiter.burst if self.learned is None else self.burst
            self.limiter.set_limits(rate, burst)

    def headers(self, parsed: RateLimitHeaders) -> None:
        """A response's rate-limit headers (success or error): a stated request limit becomes the rate."""
        if not self.adaptive or parsed.requests is None or parsed.requests.limit is None:
            return
        per_second = parsed.requests.limit / 60.0
        if per_second <= 0:
            return
        with self._lock:
            if self.stated == per_second:
                return
            self.stated, self.stated_by = per_second, parsed.source
            self.probing = None
            if self.aimd is not None and self.aimd > per_second:
                self.aimd = None  # a stated limit replaces a guess above it
            self._apply()

    def _early(self, retry_after: float | None) -> bool:
        """A short Retry-After at a known limit (configured or stated) says "strict spacing, a few ms early".
        Without one, or under an AIMD guess, it says "over the limit": a token bucket at 20/s answers every
        excess request with a Retry-After under 50 ms, which must cut the rate, not widen a margin."""
        return retry_after is not None and retry_after < SHORT and self.aimd is None and self._bound() is not None

    def absorbs(self, retry_after: float | None) -> bool:
        """Whether a 429 is pacing information for this limiter rather than a verdict on the provider's health:
        every 429 when adaptive (it is how the rate is learned), an early one (strict spacing) always."""
        return self.adaptive or self._early(retry_after)

    def rate_limited(self, retry_after: float | None) -> None:
        """A 429: early by a few ms (widen the spacing), or over the limit (cut the rate, when adaptive)."""
        now = self.clock.now()
        with self._lock:
            early = self._early(retry_after)
            if early:
                self.strict = True
                # Widen by how early it was: 1 % a 429 took 4-5 early answers to cover a 2-3 ms jitter and
                # left 3.6-4.2 % 429s at a strict 20/s provider. Far earlier is a stall (a request held, the
                # next ones bunched behind it), which no margin covers: that widens by the least step only.
                step = max(MARGIN_STEP, (retry_after or 0.0) * self.effective)
                if step > MAX_MARGIN_STEP:
                    step = MARGIN_STEP
                self.margin = min(MAX_MARGIN, self.margin + step)
            # A stated limit is the provider's own word: its 429s are timing (the margin) or a pause, not a cut.
            cut = self.adaptive and self.stated is None and not early
            if cut and now - self._last_decrease >= COOLDOWN:
                self._last_decrease = now
                self.aimd = max(FLOOR, self._sending(now) * DECREASE)
                self.probing = None
            self._apply()

    def _sending(self, now: float) -> float:
        """What the provider lets through: the rate of its recent answers (while it sends 429s, that is its
        capacity), never above what was allowed; with fewer than two, the allowed rate.

        Measured even once an AIMD rate is set: cutting the *allowed* rate (850/s after a first cut from the
        unlearned rate) by 15 % a second took 19 s of 429s to come down to a 20/s provider.
        """
        allowed = self._allowed()
        measured = self._answered(now)
        if measured is not None:
            # Never below half of what was allowed in one cut: while retries wait out their backoff the answers
            # measure our own pause, not the provider, and cutting to them spiralled the rate down to 2 req/s.
            return max(allowed / 2.0, min(allowed, measured))
        # No answers to measure yet (the first wave of a cold start): cut from what was allowed. Cutting from
        # FLOOR (1/min) here left 60 callers of a 20/s provider at 2 req/s for the rest of the run.
        return allowed

    def _answered(self, now: float) -> float | None:
        """The rate of the last ``ANSWERS`` answers, at most ``WINDOW`` s old (``None``: fewer than two). Over the
        last few answers, not a fixed time: a slow start measured over 2 s still saw its own ramp, and its first
        cut fell to 14/s under a 20/s provider."""
        recent = [t for t in self._done if t > now - WINDOW]
        if len(recent) >= 2 and now > recent[0]:
            return (len(recent) - 1) / (now - recent[0])
        return None

    def succeeded(self) -> None:
        """An answer: narrow the margin a little; probe the AIMD rate upward; grow a slow start."""
        with self._lock:
            changed = False
            if self.adaptive:
                now = self.clock.now()
                self._done.append(now)
                if self.probing is not None and self.probing < UNLEARNED_RATE:
                    answered = self._answered(now)
                    grown = 2.0 * self.probing
                    if answered is not None:
                        grown = min(grown, max(START_RATE, START_GAIN * answered))
                    self.probing = min(UNLEARNED_RATE, max(self.probing, grown))
                    changed = True
            if self.margin > 0:
                self.margin = max(0.0, self.margin - MARGIN_STEP / MARGIN_DECAY)
                changed = True
            if self.aimd is not None:
                self.aimd += PROBE
                bound = self._bound()
                if bound is not None and self.aimd >= bound:
                    self.aimd = None  # back at the limit: nothing left to learn until the next 429
                changed = True
            if changed:
                self._apply()
