"""Retry decisions: which errors, how many times, how long to wait, and a budget against amplification.

Pure functions of (error, attempt, time) plus a small budget object, so the executor's one loop serves sync,
async and streaming calls alike. Delays always lie in [``initial_delay``, ``max_delay``]; a provider's
Retry-After overrides the backoff, floored at ``initial_delay`` and capped at ``max_retry_after``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from ..clock import Clock
from ..config import RetryBudgetConfig, RetryConfig
from ..errors.exceptions import DeadlineExceededError, ResilienceError

StopReason = Literal[
    "not_retryable", "exhausted", "local_rejection", "retry_after_too_long", "deadline", "budget", "retry"
]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to retry the same target, after how long, and why (``reason``) when not."""

    retry: bool
    delay: float = 0.0
    reason: StopReason = "retry"


def backoff_delay(
    config: RetryConfig, retry_number: int, previous: float | None = None, rng: random.Random | None = None
) -> float:
    """The wait before retry ``retry_number`` (1 = first retry), within [initial_delay, max_delay].

    ``none``: initial·m^(n-1); ``full``: uniform over [initial, initial·m^n]; ``equal``: half of initial·m^n
    fixed, half random; ``decorrelated``: uniform over [initial, 3·previous] (AWS). All capped at max_delay.
    """
    rand = (rng or _RNG).random
    lo, cap = config.initial_delay, config.max_delay
    n = max(1, retry_number)
    exponent = min(n, 1024)  # avoid float overflow for absurd attempt numbers
    try:
        grown = lo * config.backoff_multiplier**exponent
    except OverflowError:
        grown = cap
    grown = min(cap, grown)
    if config.jitter == "none":
        try:
            delay = lo * config.backoff_multiplier ** (exponent - 1)
        except OverflowError:
            delay = cap
    elif config.jitter == "full":
        delay = lo + (grown - lo) * rand()
    elif config.jitter == "equal":
        delay = grown / 2 + (grown / 2) * rand()
    else:  # decorrelated
        top = min(cap, 3 * (previous if previous is not None else lo))
        delay = lo + (max(top, lo) - lo) * rand()
    return min(cap, max(lo, delay))


_RNG = random.Random()


def decide(
    config: RetryConfig,
    error: ResilienceError,
    attempt: int,
    *,
    now: float,
    deadline: float | None,
    previous_delay: float | None = None,
    budget: RetryBudget | None = None,
    rng: random.Random | None = None,
) -> RetryDecision:
    """Decide after ``attempt`` attempts (1-based) failed with ``error``.

    Never retries local rejections (an open circuit, a full queue: another target is the answer), errors
    whose code is not retryable (quota, auth, bad request...), or once ``max_retries`` retries are spent. Skips
    a sleep that would overrun the deadline, and asks the budget for permission last.
    """
    if error.local or isinstance(error, DeadlineExceededError):
        return RetryDecision(False, reason="local_rejection" if error.local else "deadline")
    if not error.retryable or (config.retry_on is not None and error.code not in config.retry_on):
        return RetryDecision(False, reason="not_retryable")
    if attempt > config.max_retries:
        return RetryDecision(False, reason="exhausted")
    if config.respect_retry_after and error.retry_after is not None and error.retry_after >= 0:
        if error.retry_after > config.max_retry_after:
            if config.on_long_retry_after == "fallback":
                return RetryDecision(False, reason="retry_after_too_long")
            delay = config.max_retry_after
        else:
            delay = max(config.initial_delay, error.retry_after)
    else:
        delay = backoff_delay(config, attempt, previous_delay, rng)
    if deadline is not None and now + delay >= deadline:
        return RetryDecision(False, delay, reason="deadline")
    if budget is not None and not budget.try_spend():
        return RetryDecision(False, delay, reason="budget")
    return RetryDecision(True, delay)


class RetryBudget:
    """Retries allowed over a sliding window: ``min_retries_per_second``·window + ``ratio``·requests.

    One per target, shared by all its callers, so a dead provider sees at most that share of extra traffic.
    Counts live in a ring of ``_SLOTS`` intervals, so recording a request is O(1) on the hot path and memory
    stays constant whatever the traffic; the window is exact to one interval (a tenth of it).
    """

    _SLOTS = 10
    __slots__ = ("_clock", "_epoch", "_epoch_ends", "_lock", "_requests", "_retries", "_width", "config")

    def __init__(self, config: RetryBudgetConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._width = config.window_seconds / self._SLOTS
        self._epoch = int(clock.now() // self._width)
        self._epoch_ends = (self._epoch + 1) * self._width
        self._requests = [0] * self._SLOTS
        self._retries = [0] * self._SLOTS

    def _slot(self) -> int:
        """The current interval's slot, clearing the intervals that have slid out of the window."""
        epoch = int(self._clock.now() // self._width)
        if epoch != self._epoch:
            with self._lock:
                stale = min(epoch - self._epoch, self._SLOTS)
                for step in range(1, stale + 1) if stale > 0 else ():
                    slot = (self._epoch + step) % self._SLOTS
                    self._requests[slot] = 0
                    self._retries[slot] = 0
                self._epoch = max(epoch, self._epoch)
                self._epoch_ends = (self._epoch + 1) * self._width
        return self._epoch % self._SLOTS

    def record_request(self) -> None:
        # On every call: inside the current interval there is nothing to clear, so skip ``_slot``'s arithmetic.
        # (A lost increment under a thread race only loosens the budget by one.)
        slot = self._epoch % self._SLOTS if self._clock.now() < self._epoch_ends else self._slot()
        self._requests[slot] += 1

    def try_spend(self) -> bool:
        slot = self._slot()
        with self._lock:
            allowed = self.config.min_retries_per_second * self.config.window_seconds + self.config.ratio * sum(
                self._requests
            )
            if sum(self._retries) + 1 > allowed:
                return False
            self._retries[slot] += 1
            return True

    @property
    def retries_in_window(self) -> int:
        self._slot()
        return sum(self._retries)
