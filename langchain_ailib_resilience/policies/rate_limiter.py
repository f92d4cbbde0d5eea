"""Token-bucket rate limiter with FIFO, notified (never polled) waiters, sync and async.

Separate rate and burst; weighted acquire (``tokens=n``); ``try_acquire``; blocking acquire bounded by a
timeout that is decided *up front* from the queue (a caller that would wait too long is told at once how long);
a cancelled or timed-out waiter consumes nothing. Pure policy: it imports nothing from LangChain; the package
root's ``RateLimiter`` is this bucket as a LangChain ``BaseRateLimiter`` (``integrations.langchain._rate_limiter``).
"""

from __future__ import annotations

import math
import threading
from collections import deque

from ..clock import SYSTEM_CLOCK, Clock
from ..errors.exceptions import RateLimitExceededError
from ._bucket import EPSILON as _EPSILON
from ._bucket import apply_bucket
from ._waiter import Waiter

_LEADS = 32
_MAX_DEPARTURE = 1.0  # a longer grant-to-departure delay is not this grant's (a stale one): ignored


class RateLimiter:
    """A token bucket: ``requests_per_second`` tokens refill per second, up to ``burst_size`` in the bucket.

    Example::

        limiter = RateLimiter(requests_per_second=10, burst_size=20)
        limiter.acquire()                    # blocks until a token is free
        await limiter.aacquire(tokens=3)     # weighted
        if limiter.try_acquire(): ...        # never waits

    Args:
        requests_per_second: refill rate, > 0.
        burst_size: bucket capacity (tokens available at once); default one second's worth, at least 1.
        max_wait: default bound on a blocking acquire's wait, in seconds (``None``: unbounded).
        clock: time source; tests pass a ``FakeClock``.
        name: shown in errors and signals.

    Waiters are served strictly first-come first-served: only the head of the queue sleeps (for exactly the
    time its tokens need), the rest wait to be notified. ``try_acquire`` never jumps the queue.
    """

    def __init__(
        self,
        requests_per_second: float,
        burst_size: int | None = None,
        *,
        max_wait: float | None = None,
        clock: Clock | None = None,
        name: str = "rate_limiter",
    ) -> None:
        if not (isinstance(requests_per_second, int | float) and math.isfinite(requests_per_second)):
            raise ValueError(f"requests_per_second must be a finite number, got {requests_per_second!r}")
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second!r}")
        if burst_size is None:
            burst_size = max(1, math.ceil(requests_per_second))
        if not isinstance(burst_size, int) or isinstance(burst_size, bool) or burst_size < 1:
            raise ValueError(f"burst_size must be an integer >= 1, got {burst_size!r}")
        if max_wait is not None and (not math.isfinite(max_wait) or max_wait < 0):
            raise ValueError(f"max_wait must be >= 0 or None, got {max_wait!r}")
        self.rate = float(requests_per_second)
        self.burst = burst_size
        self.max_wait = max_wait
        self.name = name
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._tokens = float(burst_size)
        self._stamp = self._clock.now()
        self._waiters: deque[Waiter] = deque()
        self._queued_tokens = 0.0
        self.granted_total = 0
        self.rejected_total = 0
        self._leads: deque[float] = deque(maxlen=_LEADS)  # recent grant-to-departure delays

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def requests_per_second(self) -> float:
        return self.rate

    @property
    def burst_size(self) -> int:
        return self.burst

    # --- state (call with the lock held) ------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        _, self._tokens, self._stamp = apply_bucket(self._tokens, self._stamp, now, 0.0, self.rate, self.burst)

    def _take(self, tokens: float, now: float, pause: float = 0.0, reserve: float = 0.0, due: float = 0.0) -> float:
        """Take ``tokens`` (< 0: give back) and return 0.0, or take nothing and return the seconds they need
        (lock held). ``pause``: grant nothing for that long first; ``reserve``/``due``: see ``apply_bucket``.

        The bucket changes only through ``_bucket.apply_bucket`` (the arithmetic every bucket shares; here and,
        inlined, in ``try_acquire``);
        ``state.SharedRateLimiter`` reuses it as its local fallback bucket.
        """
        wait, self._tokens, self._stamp = apply_bucket(
            self._tokens, self._stamp, now, tokens, self.rate, self.burst, pause, reserve, due
        )
        return wait

    def _take_if_free(self, tokens: float) -> bool:
        """Take ``tokens`` if nobody is queued and they are free now (lock held); refills as a side effect."""
        now = self._clock.now()
        if self._waiters:
            self._refill(now)
            return False
        return self._take(tokens, now) == 0.0

    def _wait_estimate(self, tokens: float) -> float:
        """Seconds until a newcomer asking ``tokens`` would be served, given everyone already queued."""
        deficit = self._queued_tokens + tokens - self._tokens - _EPSILON
        return max(0.0, deficit / self.rate)

    def _check_amount(self, tokens: float) -> None:
        if not (tokens > 0 and math.isfinite(tokens)):
            raise ValueError(f"tokens must be a positive number, got {tokens!r}")
        if tokens > self.burst:
            raise ValueError(
                f"tokens={tokens} can never be granted by {self.name!r}: it exceeds burst_size={self.burst}"
            )

    def _admit_or_enqueue(
        self, tokens: float, blocking: bool, timeout: float | None, is_async: bool
    ) -> Waiter | float | None:
        """Take at once (``None``), reject with the wait it would need (``float``), or enqueue (``Waiter``)."""
        self._check_amount(tokens)
        with self._lock:
            if self._take_if_free(tokens):
                self.granted_total += 1
                return None
            estimate = self._wait_estimate(tokens)
            if not blocking or (timeout is not None and estimate > timeout):
                self.rejected_total += 1
                return max(estimate, 1e-9)
            waiter = Waiter(tokens, is_async=is_async)
            self._waiters.append(waiter)
            self._queued_tokens += tokens
            return waiter

    def _poll_head(self, waiter: Waiter) -> float | None:
        """For a queued waiter: grant (0.0), sleep this long as head (> 0), or wait for a wake-up (None)."""
        with self._lock:
            if not self._waiters or self._waiters[0] is not waiter:
                return None
            delay = self._take(waiter.amount, self._clock.now())
            if delay == 0.0:
                self._grant_head()
            return delay

    def _grant_head(self) -> None:
        head = self._waiters.popleft()
        self._queued_tokens -= head.amount
        head.granted = True
        self.granted_total += 1
        if self._waiters:
            self._waiters[0].wake()

    def _abandon(self, waiter: Waiter) -> None:
        """A waiter leaves (cancelled, timed out, errored) without its tokens: hand the head on if it was it."""
        with self._lock:
            if waiter.granted:
                return
            was_head = bool(self._waiters) and self._waiters[0] is waiter
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return
            self._queued_tokens -= waiter.amount
            if was_head and self._waiters:
                self._waiters[0].wake()

    def _rejection(self, wait: float, tokens: float) -> RateLimitExceededError:
        return RateLimitExceededError(
            f"local rate limit {self.name!r} ({self.rate:g}/s, burst {self.burst}): {tokens:g} token(s) "
            f"would need a {wait:.3f}s wait; retry in {wait:.3f}s",
            retry_after=wait,
        )

    # --- blocking API -------------------------------------------------------------------------------------

    def acquire_or_raise(self, *, tokens: float = 1, timeout: float | None = None) -> None:
        """Block until granted, or raise ``RateLimitExceededError`` at once if the wait would exceed ``timeout``."""
        outcome = self._admit_or_enqueue(tokens, True, timeout, is_async=False)
        if outcome is None:
            return
        if isinstance(outcome, float):
            raise self._rejection(outcome, tokens)
        waiter = outcome
        try:
            while True:
                delay = self._poll_head(waiter)
                if delay == 0.0:
                    return
                if delay is None:
                    assert waiter.event is not None
                    self._clock.wait(waiter.event, None)
                    waiter.event.clear()
                else:
                    self._clock.sleep(delay)
        finally:
            if not waiter.granted:
                self._abandon(waiter)

    async def aacquire_or_raise(self, *, tokens: float = 1, timeout: float | None = None) -> None:
        """Async twin of ``acquire_or_raise``; a cancelled waiter gives its place up and consumes nothing."""
        outcome = self._admit_or_enqueue(tokens, True, timeout, is_async=True)
        if outcome is None:
            return
        if isinstance(outcome, float):
            raise self._rejection(outcome, tokens)
        waiter = outcome
        try:
            while True:
                delay = self._poll_head(waiter)
                if delay == 0.0:
                    return
                if delay is None:
                    assert waiter.future is not None
                    await self._clock.await_future(waiter.future, None)
                else:
                    await self._clock.asleep(delay)
        finally:
            if not waiter.granted:
                self._abandon(waiter)

    def acquire(self, *, blocking: bool = True, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``; ``True`` once granted, ``False`` if not blocking (or the wait would exceed
        ``timeout``, default ``max_wait``) and they are not free now."""
        if not blocking:
            return self.try_acquire(tokens)
        try:
            self.acquire_or_raise(tokens=tokens, timeout=self.max_wait if timeout is None else timeout)
        except RateLimitExceededError:
            return False
        return True

    async def aacquire(self, *, blocking: bool = True, tokens: float = 1, timeout: float | None = None) -> bool:
        """Async ``acquire``."""
        if not blocking:
            return self.try_acquire(tokens)
        try:
            await self.aacquire_or_raise(tokens=tokens, timeout=self.max_wait if timeout is None else timeout)
        except RateLimitExceededError:
            return False
        return True

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` only if free now and nobody is queued; never waits."""
        if not 0 < tokens <= self.burst:  # also catches NaN
            self._check_amount(tokens)
        with self._lock:  # (``_take_if_free`` inlined: this runs on every call of the executor's happy path)
            now = self._clock.now()
            if self._waiters:
                self._refill(now)
            else:  # (``_take`` inlined)
                level, stamp = self._tokens, self._stamp
                wait, self._tokens, self._stamp = apply_bucket(level, stamp, now, tokens, self.rate, self.burst)
                if wait == 0.0:
                    self.granted_total += 1
                    return True
            self.rejected_total += 1
            return False

    def refund(self, tokens: float = 1) -> None:
        """Give back tokens taken but not used (a later check failed, the caller was cancelled)."""
        if not (tokens > 0 and math.isfinite(tokens)):
            return
        with self._lock:
            self._take(-tokens, self._clock.now())
            if self._waiters:
                self._waiters[0].wake()

    def debit(self, tokens: float) -> None:
        """Charge tokens used beyond those taken (a call that used more than it reserved): as many as the bucket
        holds, never taking it below zero, never waiting."""
        if not (tokens > 0 and math.isfinite(tokens)):
            return
        with self._lock:
            self._refill(self._clock.now())
            if self._tokens > 0:
                self._tokens = max(0.0, self._tokens - tokens)

    # --- pacing -------------------------------------------------------------------------------------------

    def departed(self, granted_at: float) -> None:
        """The request granted at ``granted_at`` leaves now: count the spacing from its departure. The bucket
        is brought down to what it would hold had the token been taken now, less the least delay seen lately
        (every request takes at least that long to leave, so the next grant anticipates it), never below empty:
        one late departure delays the next grant by at most one interval."""
        with self._lock:
            now = self._clock.now()
            delay = now - granted_at
            if not 0.0 <= delay < _MAX_DEPARTURE:
                return
            lead = self._leads
            lead.append(delay)
            late = delay - min(lead)
            if late <= 0.0:
                return
            self._refill(now)
            level = self._tokens
            if level > 0.0:
                self._tokens = max(0.0, level - late * self.rate)

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` to anyone (the provider said so: a Retry-After, an exhausted limit);
        afterwards one token is there and the rest refill at the rate. A longer pause already set is kept."""
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        with self._lock:
            self._take(0.0, self._clock.now(), seconds)

    def set_rate(self, requests_per_second: float) -> None:
        """Change the refill rate from now on (tokens already in the bucket stay): learned limits use this."""
        self.set_limits(requests_per_second, self.burst)

    def set_limits(self, requests_per_second: float, burst_size: int) -> None:
        """Change rate and burst from now on (a bucket above the new burst is cut down to it); the head waiter
        is woken to ask again at the new rate."""
        if not (requests_per_second > 0 and math.isfinite(requests_per_second)) or burst_size < 1:
            return
        with self._lock:
            self._refill(self._clock.now())
            self.rate = float(requests_per_second)
            self.burst = int(burst_size)
            self._tokens = min(self._tokens, float(self.burst))
            if self._waiters:
                self._waiters[0].wake()

    # --- reading ------------------------------------------------------------------------------------------

    @property
    def remaining(self) -> float:
        """Tokens free right now for a newcomer (queued demand subtracted), never negative."""
        with self._lock:
            self._refill(self._clock.now())
            return max(0.0, self._tokens - self._queued_tokens)

    @property
    def waiting(self) -> int:
        """Callers queued for tokens."""
        with self._lock:
            return len(self._waiters)

    def wait_estimate(self, tokens: float = 1) -> float:
        """Seconds a newcomer asking ``tokens`` would wait now."""
        with self._lock:
            self._refill(self._clock.now())
            return self._wait_estimate(tokens)

    def __repr__(self) -> str:
        return f"RateLimiter(requests_per_second={self.rate:g}, burst_size={self.burst}, name={self.name!r})"
