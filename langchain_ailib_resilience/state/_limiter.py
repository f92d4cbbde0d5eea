"""A ``RateLimiter`` whose bucket lives in a shared store (Redis), falling back to its own bucket when it can't.

The FIFO queue of waiters stays in the process; only the head of the queue talks to the store, outside the
lock. It asks once, with the wait it accepts: the store takes its tokens now (free, or as a *reservation*, debt
due at an exact time) or, when even that would overrun the caller's timeout, takes nothing. A reserved head
sleeps until its time and goes without asking again, so waiters of several processes never race for the same
refill, and one that wakes late costs the others nothing (at burst 1, four processes racing lost 5-7 % of the
rate to wake-up lateness and failed takes). A head that leaves before its time hands its reservation to the
next waiter here, or gives it back. The inherited local bucket mirrors the store's last reported level; it
gives the up-front wait estimates and, while the store is unreachable, becomes the limit itself (same rate and
burst), so no request is ever dropped or failed because of the store. The store is tried again after a
back-off that doubles up to ``max_retry_backoff``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, NamedTuple

from ..clock import Clock
from ..errors.exceptions import RateLimitExceededError
from ..policies._waiter import Waiter
from ..policies.rate_limiter import RateLimiter
from ._store import BucketReply, BucketStore, StateStoreUnavailableError, loop_running

logger = logging.getLogger("langchain_ailib_resilience.state")

LOCAL_FALLBACK = "local-fallback"


def _paused(pause: float) -> tuple[float, ...]:
    """The optional ``pause`` argument, passed only when set: stores written before it keep working."""
    return (pause,) if pause > 0 else ()


class _Held(NamedTuple):
    """A reservation the head holds: ``amount`` tokens, due at ``due`` (this process's clock) and ``bucket_due``
    (the clock of the bucket it came from: the store's, or ours for the local bucket)."""

    amount: float
    due: float
    bucket_due: float
    from_store: bool


class _SharedWaiter(Waiter):
    """A queued caller with its deadline (decided on entry) and, once head, the reservation it holds."""

    __slots__ = ("deadline", "held")

    def __init__(self, amount: float, deadline: float | None, *, is_async: bool) -> None:
        super().__init__(amount, is_async=is_async)
        self.deadline = deadline
        self.held: _Held | None = None


class SharedRateLimiter(RateLimiter):
    """A token bucket shared by every process naming the same ``key`` in ``store``.

    Example::

        store = RedisStateStore("redis://localhost:6379/0")
        limiter = SharedRateLimiter(store, "ailib:rl:{openai/gpt-4o}", requests_per_second=30, burst_size=5)
        limiter.acquire_or_raise(tokens=2, timeout=10)

    Args are ``RateLimiter``'s plus ``store``, ``key``, and ``retry_backoff``/``max_retry_backoff``: how long
    to stay on the local bucket after the store fails before asking it again (doubling per failure).

    ``backend`` says where the limit is enforced right now: the store's name, or ``"local-fallback"``.
    A ``timeout`` is checked up front against the local estimate and again whenever the head learns the real
    wait, so a caller is never kept past it; it can wait up to one store round trip (bounded by the store's
    socket timeout) more.
    """

    def __init__(
        self,
        store: BucketStore,
        key: str,
        requests_per_second: float,
        burst_size: int | None = None,
        *,
        max_wait: float | None = None,
        clock: Clock | None = None,
        name: str = "rate_limiter",
        retry_backoff: float = 1.0,
        max_retry_backoff: float = 30.0,
    ) -> None:
        super().__init__(requests_per_second, burst_size, max_wait=max_wait, clock=clock, name=name)
        if not (retry_backoff > 0 and max_retry_backoff >= retry_backoff):
            raise ValueError(f"need 0 < retry_backoff <= max_retry_backoff, got {retry_backoff}, {max_retry_backoff}")
        self.store = store
        self.key = key
        self._initial_backoff = float(retry_backoff)
        self._max_backoff = float(max_retry_backoff)
        self._backoff = self._initial_backoff
        self._down_until: float | None = None  # set while on the local bucket: when to ask the store again
        self._pending: set[asyncio.Task[Any]] = set()
        self.fallbacks_total = 0
        self.last_grant_time: float | None = None
        """Store clock (``BucketReply.time``) of the latest grant from the store: one scale for all processes."""

    # --- where the limit lives ----------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """``"redis"`` (the store's name) while the store answers, ``"local-fallback"`` while it does not."""
        return LOCAL_FALLBACK if self._down_until is not None else self.store.name

    def _store_due(self) -> bool:
        down_until = self._down_until
        return down_until is None or self._clock.now() >= down_until

    def _store_failed(self, exc: StateStoreUnavailableError) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = self._clock.now() + self._backoff
            backoff = self._backoff
            self._backoff = min(self._max_backoff, self._backoff * 2)
            if first:
                self.fallbacks_total += 1
        if first:
            logger.warning(
                "rate limit %r: shared state store %r unreachable (%s); enforcing local limits (%g/s, burst %d) "
                "and retrying the store in %gs",
                self.name, self.store, exc, self.rate, self.burst, backoff,
            )  # fmt: skip
        else:
            logger.debug("rate limit %r: store still unreachable (%s); next try in %gs", self.name, exc, backoff)

    def _store_answered(self, reply: BucketReply, tokens: float) -> float:
        with self._lock:
            # Mirror the shared level: it feeds wait estimates, and the local bucket starts from it on fallback.
            self._tokens = reply.level
            self._stamp = self._clock.now()
            if tokens > 0 and reply.wait == 0.0:
                self.last_grant_time = reply.time
            recovered = self._down_until is not None
            self._down_until = None
            self._backoff = self._initial_backoff
        if recovered:
            logger.info("rate limit %r: shared state store %r answers again; limits are shared", self.name, self.store)
        return reply.wait

    def _local(self, tokens: float, pause: float = 0.0) -> float:
        with self._lock:
            return self._take(tokens, self._clock.now(), pause)

    def _shared_take(self, tokens: float, pause: float = 0.0) -> float:
        """Take (> 0), give back (< 0) or peek (0) at the bucket, wherever it lives now: 0.0 or the wait.
        ``pause`` > 0 first stops grants for that long, for every process sharing the bucket."""
        if self._store_due():
            try:
                reply = self.store.take(self.key, tokens, self.rate, self.burst, *_paused(pause))
            except StateStoreUnavailableError as exc:
                self._store_failed(exc)
            else:
                return self._store_answered(reply, tokens)
        return self._local(tokens, pause)

    async def _ashared_take(self, tokens: float, pause: float = 0.0) -> float:
        if self._store_due():
            call = asyncio.ensure_future(self.store.atake(self.key, tokens, self.rate, self.burst, *_paused(pause)))
            try:
                # Shielded: a cancelled caller must not leave a take half-done; if the store granted after
                # all, the tokens go back.
                reply = await asyncio.shield(call)
            except StateStoreUnavailableError as exc:
                self._store_failed(exc)
            except asyncio.CancelledError:
                call.add_done_callback(lambda done: self._return_late_grant(done, tokens))
                raise
            else:
                return self._store_answered(reply, tokens)
        return self._local(tokens, pause)

    def _return_late_grant(self, call: asyncio.Future[BucketReply], tokens: float) -> None:
        if call.cancelled() or call.exception() is not None or tokens <= 0 or call.result().wait > 0.0:
            return  # (reading the exception also keeps asyncio from logging it as never retrieved)
        reply = call.result()
        if reply.wait < 0:  # a reservation nobody will wait for
            self._background(self._areturn_to_store(_Held(tokens, 0.0, reply.time - reply.wait, True)))
            return
        self._in_background(-tokens)

    def _in_background(self, tokens: float) -> None:
        """Give back (or peek) through the async client, as a task of the running loop: nothing waits on it."""
        self._background(self._ashared_take(tokens))

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- reservations -------------------------------------------------------------------------------------

    def _reserve(self, waiter: _SharedWaiter) -> float:
        """The longest wait the head accepts for a reservation: what is left before its deadline."""
        return math.inf if waiter.deadline is None else max(0.0, waiter.deadline - self._clock.now())

    def _hold(self, waiter: _SharedWaiter, wait: float, bucket_now: float, from_store: bool) -> float:
        if wait < 0:  # reserved: taken now, due in -wait
            held = _Held(waiter.amount, self._clock.now() - wait, bucket_now - wait, from_store)
            with self._lock:
                waiter.held = held
        return wait

    def _head_take(self, waiter: _SharedWaiter) -> float:
        """The head asks for its tokens, once: 0.0 granted, < 0 reserved (``waiter.held``), > 0 not taken."""
        reserve = self._reserve(waiter)
        if self._store_due():
            try:
                reply = self.store.take(self.key, waiter.amount, self.rate, self.burst, reserve=reserve)
            except StateStoreUnavailableError as exc:
                self._store_failed(exc)
            else:
                return self._hold(waiter, self._store_answered(reply, waiter.amount), reply.time, True)
        return self._local_head_take(waiter, reserve)

    async def _ahead_take(self, waiter: _SharedWaiter) -> float:
        reserve = self._reserve(waiter)
        if self._store_due():
            call = asyncio.ensure_future(
                self.store.atake(self.key, waiter.amount, self.rate, self.burst, reserve=reserve)
            )
            try:
                reply = await asyncio.shield(call)  # as in ``_ashared_take``: a late grant or reservation goes back
            except StateStoreUnavailableError as exc:
                self._store_failed(exc)
            except asyncio.CancelledError:
                call.add_done_callback(lambda done: self._return_late_grant(done, waiter.amount))
                raise
            else:
                return self._hold(waiter, self._store_answered(reply, waiter.amount), reply.time, True)
        return self._local_head_take(waiter, reserve)

    def _local_head_take(self, waiter: _SharedWaiter, reserve: float) -> float:
        """The head's ask of the local fallback bucket (the store is down or not due to be retried)."""
        with self._lock:
            now = self._clock.now()
            wait = self._take(waiter.amount, now, reserve=reserve)
        return self._hold(waiter, wait, now, False)

    def _give_back_held(self, held: _Held) -> None:
        """Return a reservation nobody will use to the bucket it came from (kept spent there if a later
        reservation was made after it: ``apply_bucket``). From the store, only while the store is up."""
        if not held.from_store:
            with self._lock:
                self._take(-held.amount, self._clock.now(), due=held.bucket_due)
            return
        if not self._store_due():
            return
        if loop_running():
            self._background(self._areturn_to_store(held))
            return
        try:
            reply = self.store.take(self.key, -held.amount, self.rate, self.burst, due=held.bucket_due)
        except StateStoreUnavailableError as exc:
            self._store_failed(exc)
        else:
            self._store_answered(reply, -held.amount)

    async def _areturn_to_store(self, held: _Held) -> None:
        try:
            reply = await self.store.atake(self.key, -held.amount, self.rate, self.burst, due=held.bucket_due)
        except StateStoreUnavailableError as exc:
            self._store_failed(exc)
        else:
            self._store_answered(reply, -held.amount)

    def _grant_held(self, waiter: _SharedWaiter, held: _Held) -> bool:
        """The head's reservation ``held`` is due: it goes (``True``), and the next waiter becomes head; unless a
        pause voided it meanwhile (``False``: ask again)."""
        with self._lock:
            if waiter.held is not held:
                return False
            if held.from_store:
                self.last_grant_time = held.bucket_due
            waiter.held = None
            self._grant_head()
            return True

    def _abandon(self, waiter: Waiter) -> None:
        """A waiter leaves without its tokens. A reservation it held goes to the next waiter here when that one
        asks no more and can wait until it is due (FIFO order kept, nothing to give back); else back to the
        bucket (the part the next waiter does not need, too)."""
        assert isinstance(waiter, _SharedWaiter)
        with self._lock:
            held, waiter.held = waiter.held, None
            if held is not None and not waiter.granted:
                heir = self._waiters[1] if len(self._waiters) > 1 and self._waiters[0] is waiter else None
                if (
                    isinstance(heir, _SharedWaiter)
                    and heir.held is None
                    and heir.amount <= held.amount
                    and (heir.deadline is None or held.due <= heir.deadline)
                ):
                    heir.held = held._replace(amount=heir.amount)
                    excess = held.amount - heir.amount
                    held = held._replace(amount=excess) if excess > 0 else None
        super()._abandon(waiter)  # leaves the queue, wakes the new head
        if held is not None:
            self._give_back_held(held)

    # --- the local queue ----------------------------------------------------------------------------------

    def _enqueue(self, tokens: float, timeout: float | None, is_async: bool) -> _SharedWaiter:
        """Join the FIFO queue, or be rejected at once when even the local estimate exceeds ``timeout``."""
        self._check_amount(tokens)
        with self._lock:
            now = self._clock.now()
            if self._waiters and timeout is not None:
                self._refill(now)
                estimate = self._wait_estimate(tokens)
                if estimate > timeout:
                    self.rejected_total += 1
                    raise self._rejection(max(estimate, 1e-9), tokens)
            waiter = _SharedWaiter(tokens, None if timeout is None else now + timeout, is_async=is_async)
            self._waiters.append(waiter)
            self._queued_tokens += tokens
            return waiter

    def _wait_estimate(self, tokens: float) -> float:
        """As ``RateLimiter``'s, but a head's reservation is already out of the level: not counted twice."""
        head = self._waiters[0] if self._waiters else None
        held = head.held.amount if isinstance(head, _SharedWaiter) and head.held is not None else 0.0
        return super()._wait_estimate(tokens - held)

    def _is_head(self, waiter: Waiter) -> bool:
        with self._lock:
            return bool(self._waiters) and self._waiters[0] is waiter

    def _settle(self, waiter: _SharedWaiter, wait: float) -> float:
        """After the head's take: grant (0.0), the time to sleep, or reject if that would overrun its deadline
        (a reservation, ``wait < 0``, is within it by construction: sleep ``-wait``)."""
        if wait == 0.0:
            with self._lock:
                self._grant_head()
            return 0.0
        if wait < 0:
            return -wait
        deadline = waiter.deadline
        if deadline is not None and self._clock.now() + wait > deadline + 1e-9:
            with self._lock:
                self.rejected_total += 1
            raise self._rejection(wait, waiter.amount)
        return wait

    def _left(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - self._clock.now())

    def _timed_out(self, waiter: _SharedWaiter) -> None:
        """A queued (not head) waiter whose deadline passed: it leaves, rejected, with nothing consumed."""
        deadline = waiter.deadline
        if deadline is not None and self._clock.now() >= deadline and not self._is_head(waiter):
            with self._lock:
                self.rejected_total += 1
                estimate = max(self._wait_estimate(0.0), 1e-9)
            raise self._rejection(estimate, waiter.amount)

    def _rejection(self, wait: float, tokens: float) -> RateLimitExceededError:
        return RateLimitExceededError(
            f"shared rate limit {self.name!r} ({self.rate:g}/s, burst {self.burst}, {self.backend}): {tokens:g} "
            f"token(s) would need a {wait:.3f}s wait; retry in {wait:.3f}s",
            retry_after=wait,
        )

    # --- blocking API -------------------------------------------------------------------------------------

    def acquire_or_raise(self, *, tokens: float = 1, timeout: float | None = None) -> None:
        """Block until granted, or raise ``RateLimitExceededError`` once the wait would exceed ``timeout``."""
        waiter = self._enqueue(tokens, timeout, is_async=False)
        try:
            while True:
                if not self._is_head(waiter):
                    assert waiter.event is not None
                    self._clock.wait(waiter.event, self._left(waiter.deadline))
                    waiter.event.clear()
                    self._timed_out(waiter)
                    continue
                held = waiter.held
                if held is not None:  # reserved (or handed on by a head that left): go when due
                    if (delay := held.due - self._clock.now()) > 0:
                        self._clock.sleep(delay)
                    if self._grant_held(waiter, held):
                        return
                    continue  # voided by a pause while it slept: ask again
                delay = self._settle(waiter, self._head_take(waiter))
                if delay == 0.0:
                    return
                if waiter.held is None:
                    self._clock.sleep(delay)  # a store that does not reserve: ask again after
        finally:
            if not waiter.granted:
                self._abandon(waiter)

    async def aacquire_or_raise(self, *, tokens: float = 1, timeout: float | None = None) -> None:
        """Async twin of ``acquire_or_raise``; a cancelled waiter gives its place (and any reservation) up."""
        waiter = self._enqueue(tokens, timeout, is_async=True)
        try:
            while True:
                if not self._is_head(waiter):
                    assert waiter.future is not None
                    await self._clock.await_future(waiter.future, self._left(waiter.deadline))
                    self._timed_out(waiter)
                    continue
                held = waiter.held
                if held is not None:
                    if (delay := held.due - self._clock.now()) > 0:
                        await self._clock.asleep(delay)
                    if self._grant_held(waiter, held):
                        return
                    continue  # voided by a pause while it slept: ask again
                delay = self._settle(waiter, await self._ahead_take(waiter))
                if delay == 0.0:
                    return
                if waiter.held is None:
                    await self._clock.asleep(delay)
        finally:
            if not waiter.granted:
                self._abandon(waiter)

    async def aacquire(self, *, blocking: bool = True, tokens: float = 1, timeout: float | None = None) -> bool:
        """Async ``acquire``; the non-blocking form asks the store without blocking the event loop."""
        if not blocking:
            return await self.atry_acquire(tokens)
        return await super().aacquire(blocking=True, tokens=tokens, timeout=timeout)

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` only if free now and nobody in this process is queued; never waits for the queue.

        It does ask the store, synchronously: on an event loop use ``atry_acquire`` (the library's async paths do).
        """
        if not self._may_jump(tokens):
            return False
        return self._try_settle(self._shared_take(tokens))

    async def atry_acquire(self, tokens: float = 1) -> bool:
        """Async ``try_acquire``."""
        if not self._may_jump(tokens):
            return False
        return self._try_settle(await self._ashared_take(tokens))

    def _may_jump(self, tokens: float) -> bool:
        self._check_amount(tokens)
        with self._lock:
            if self._waiters:
                self.rejected_total += 1
                return False
            return True

    def _try_settle(self, wait: float) -> bool:
        with self._lock:
            if wait == 0.0:
                self.granted_total += 1
                return True
            self.rejected_total += 1
            return False

    def refund(self, tokens: float = 1) -> None:
        """Give back tokens taken but not used, to the bucket they were taken from as far as known."""
        if not (tokens > 0 and math.isfinite(tokens)):
            return
        if loop_running():
            self._in_background(-tokens)  # on a loop's thread: the async client, never a blocking call
        else:
            self._shared_take(-tokens)
        with self._lock:
            if self._waiters:
                self._waiters[0].wake()

    def departed(self, granted_at: float) -> None:
        """Not re-counted: the shared bucket spaces grants on the store's clock (a store call per request to move
        it would cost more than the few ms it corrects)."""

    def debit(self, tokens: float) -> None:
        """Charge tokens used beyond those taken, in the shared bucket: as many as it holds (read, then taken; a
        race with another process can only charge less), never below zero. On an event loop, by a task."""
        if not (tokens > 0 and math.isfinite(tokens)):
            return
        if loop_running():
            task = asyncio.ensure_future(self._adebit(tokens))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        self._shared_take(0.0)
        part = min(tokens, self._tokens)
        if part > 0:
            self._shared_take(part)

    async def _adebit(self, tokens: float) -> None:
        await self._ashared_take(0.0)
        part = min(tokens, self._tokens)
        if part > 0:
            await self._ashared_take(part)

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds``, in every process sharing the bucket. On an event loop the store is told
        by a background task (never a blocking call on the loop); the local mirror pauses at once either way.
        A reservation this process holds that falls due inside the pause is voided (it stays spent in the bucket;
        the head asks again, to be due after the pause); one held in another process still goes when due (at most
        one per process: only its head holds one, and it is not asked again)."""
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        super().pause(seconds)
        with self._lock:
            head = self._waiters[0] if self._waiters else None
            if (
                isinstance(head, _SharedWaiter)
                and head.held is not None
                and head.held.due < self._clock.now() + seconds
            ):
                head.held = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._shared_take(0.0, seconds)
            return
        task = asyncio.ensure_future(self._ashared_take(0.0, seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- reading ------------------------------------------------------------------------------------------

    @property
    def remaining(self) -> float:
        """Tokens free now for a newcomer in this process (asks the store; the local mirror of the store's last
        answer while it is down; on an event loop's thread, where a store call would stall it, the mirror, with
        a peek at the store started as a task to refresh it)."""
        if not loop_running():
            self._shared_take(0.0)
        elif not self._pending and self._store_due():
            self._in_background(0.0)
        return super().remaining

    def __repr__(self) -> str:
        return (
            f"SharedRateLimiter(requests_per_second={self.rate:g}, burst_size={self.burst}, name={self.name!r}, "
            f"key={self.key!r}, backend={self.backend!r})"
        )
