"""ResilientExecutor: retry, rate limit, circuit breaker, in-flight limit and fallback around any call.

Per call: total deadline → for each target in order → [preflight: breaker admission, rate token, in-flight
permit] → attempt under the attempt timeout → record the outcome → retry with backoff (Retry-After aware,
capped, deadline aware) or fall back. One decision path (``_Run``) serves async and sync calls and the first chunk
of streams; every permit is released in ``finally``. Cancellation (``CancelledError``, ``KeyboardInterrupt``,
``GeneratorExit``) is never retried, never counted against a provider and never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from .clock import SYSTEM_CLOCK, Clock
from .config import ResilientConfig
from .errors.classify import classify_error
from .errors.codes import StandardErrorCode
from .errors.exceptions import AttemptRecord, DeadlineExceededError, ProviderTimeoutError, ResilienceError
from .events import EventKind, EventListener, ResilienceEvent, call_listeners, emit, rejection_reason
from .policies import retry as retry_policy
from .policies.circuit_breaker import CircuitState
from .preflight import PreflightChecker, Ticket
from .registry import DEFAULT_REGISTRY, Registry, TargetState
from .signals import SignalsSnapshot

T = TypeVar("T")

UNNAMED = "default"
"""The target of a call that names none: its state is private to the executor that runs it."""


class AttemptContext:
    """Handed to each attempt: which target, which attempt (1-based), which candidate, and the time it has."""

    __slots__ = ("attempt", "index", "target", "timeout")

    def __init__(self, target: str, attempt: int, index: int, timeout: float | None) -> None:
        self.target = target
        self.attempt = attempt
        self.index = index
        self.timeout = timeout

    def __repr__(self) -> str:
        fields = f"target={self.target!r}, attempt={self.attempt}, index={self.index}, timeout={self.timeout}"
        return f"AttemptContext({fields})"


class Candidate(NamedTuple, Generic[T]):
    """A target and how to call it. ``fn(ctx)`` returns an awaitable, a value, or a (async) iterator, by mode."""

    target: str
    fn: Callable[[AttemptContext], Any]
    provider: str | None = None
    model: str | None = None


class _Run:
    """The decisions of one call, shared by every loop flavour."""

    __slots__ = ("deadline", "executor", "history", "last_error", "listeners", "n_candidates", "observers")

    def __init__(self, executor: ResilientExecutor, n_candidates: int, listeners: Sequence[EventListener]) -> None:
        self.executor = executor
        total = executor.total_timeout
        self.deadline = None if total is None else executor.clock.now() + total
        self.history: list[AttemptRecord] = []
        self.last_error: ResilienceError | None = None
        self.n_candidates = n_candidates
        listeners = (*executor.listeners, *listeners) if listeners else executor.listeners
        # Decisions go to the executor's and the call's listeners; observers (instrumentation) hear every event.
        self.observers = call_listeners()
        self.listeners: tuple[EventListener, ...] = (*listeners, *self.observers) if self.observers else listeners

    def event(self, event: ResilienceEvent) -> None:
        emit(self.listeners, event)

    def attempting(self, candidate: Candidate[Any], attempt: int) -> None:
        """The happy path's events are built only when an observer listens to this call, and only for it."""
        if self.observers:
            detail = {"provider": candidate.provider, "model": candidate.model} if candidate.provider else {}
            event = ResilienceEvent("attempt", candidate.target, attempt, detail=detail)
            emit(self.observers, event, subscribers=False)

    def ended(self, target: str, *, closed_early: bool = False) -> None:
        if self.observers:
            detail = {"closed_early": True} if closed_early else {}
            emit(self.observers, ResilienceEvent("success", target, detail=detail), subscribers=False)

    def broke(self, target: str, error: BaseException, code: StandardErrorCode, mid_stream: bool = False) -> None:
        """The call ended without an answer: its last error, a stream broken after its first chunk, a cancel."""
        detail = {"mid_stream": True} if mid_stream else {}
        self.event(ResilienceEvent("failure", target, 0, code, None, error, detail))

    def context(self, candidate: Candidate[Any], attempt: int, index: int) -> tuple[AttemptContext, bool]:
        """The attempt's context, and whether the total deadline (not the attempt timeout) bounds its time."""
        per_attempt = self.executor.attempt_timeout
        if self.deadline is not None:
            left = self.deadline - self.executor.clock.now()
            if per_attempt is None or left < per_attempt:
                return AttemptContext(candidate.target, attempt, index, max(left, 0.0)), True
        return AttemptContext(candidate.target, attempt, index, per_attempt), False

    async def waited(
        self, check: Callable[..., Awaitable[Ticket]], state: TargetState, candidate: Candidate[Any], attempt: int
    ) -> Ticket:
        """The slow gate: wait for a token or a permit, and say how long it took (a ``rate_limit_wait`` event)."""
        started = self.executor.clock.now()
        ticket = await check(state, deadline=self.deadline)
        self._waited(candidate, attempt, started)
        return ticket

    def waited_sync(
        self, check: Callable[..., Ticket], state: TargetState, candidate: Candidate[Any], attempt: int
    ) -> Ticket:
        started = self.executor.clock.now()
        ticket = check(state, deadline=self.deadline)
        self._waited(candidate, attempt, started)
        return ticket

    def _waited(self, candidate: Candidate[Any], attempt: int, started: float) -> None:
        waited = self.executor.clock.now() - started
        if waited > 0:
            self.event(ResilienceEvent("rate_limit_wait", candidate.target, attempt, delay=waited))

    def rejected(self, candidate: Candidate[Any], attempt: int, error: ResilienceError) -> None:
        """Preflight refused (open circuit, rate wait too long, in-flight full, deadline): no request was sent."""
        self._remember(candidate, attempt, error)
        detail = {"reason": rejection_reason(error)}
        self.event(ResilienceEvent("rejected", candidate.target, attempt, error.code, error.retry_after, error, detail))

    def failed(
        self,
        candidate: Candidate[Any],
        ticket: Ticket,
        attempt: int,
        exc: Exception,
        by_deadline: bool,
        previous_delay: float | None,
    ) -> retry_policy.RetryDecision:
        """Normalise the failure, settle the ticket, and decide whether to retry the same target."""
        clock = self.executor.clock
        if isinstance(exc, TimeoutError) and not isinstance(exc, ResilienceError):
            if by_deadline and self.deadline is not None and clock.now() >= self.deadline:
                error: ResilienceError = DeadlineExceededError(
                    f"total timeout of {self.executor.config.total_timeout}s ran out during an attempt",
                    provider=candidate.provider,
                    model=candidate.model,
                )
                error.__cause__ = exc
            else:
                error = classify_error(exc, provider=candidate.provider, model=candidate.model)
                if not isinstance(error, ProviderTimeoutError):
                    error = ProviderTimeoutError(str(exc) or "attempt timed out", provider=candidate.provider)
                    error.__cause__ = exc
        else:
            error = classify_error(exc, provider=candidate.provider, model=candidate.model)
        state = ticket.state
        before = state.breaker.generation
        if isinstance(error, DeadlineExceededError) or error.local:
            ticket.release()  # a nested gate's rejection or our deadline says nothing about this provider
        else:
            ticket.failure(error.code)
        self._state_change(state, before, "half_open" if ticket.permit.probe else "closed")
        self._remember(candidate, attempt, error)
        budget = state.budget
        decision = retry_policy.decide(
            self.executor.config.retry,  # the caller's retry policy; the target's shared state holds breaker/limits
            error,
            attempt,
            now=clock.now(),
            deadline=self.deadline,
            previous_delay=previous_delay,
            budget=budget,
        )
        kind: EventKind = "retry" if decision.retry else "give_up"
        self.event(
            ResilienceEvent(
                kind,
                candidate.target,
                attempt,
                error.code,
                decision.delay,
                error,
                {"reason": decision.reason},
            )
        )
        return decision

    def succeeded(self, ticket: Ticket) -> None:
        before = ticket.state.breaker.generation
        ticket.success()
        if ticket.state.breaker.generation != before:
            self._state_change(ticket.state, before, "half_open")
        self.ended(ticket.state.target)

    def _state_change(self, state: TargetState, before: int, from_state: str) -> None:
        if state.breaker.generation != before:
            self.state_changed(state, from_state)

    def state_changed(self, state: TargetState, from_state: str = "open") -> None:
        """For this call's listeners: process-wide subscribers hear every transition from the breaker itself."""
        if self.listeners:
            detail = {"from_state": from_state, "to_state": state.breaker.state.value}
            emit(self.listeners, ResilienceEvent("state_change", state.target, detail=detail), subscribers=False)

    def _remember(self, candidate: Candidate[Any], attempt: int, error: ResilienceError) -> None:
        self.history.append(AttemptRecord(candidate.target, attempt, error.code, error.message, error.local))
        self.last_error = error

    def may_fall_back(self, index: int, candidates: Sequence[Candidate[Any]]) -> bool:
        error = self.last_error
        if error is None or index + 1 >= self.n_candidates or isinstance(error, DeadlineExceededError):
            return False
        if self.deadline is not None and self.executor.clock.now() >= self.deadline:
            return False
        if not error.fallbackable:
            return False
        detail = {"from_index": index, "to_index": index + 1, "next_target": candidates[index + 1].target}
        self.event(ResilienceEvent("fallback", candidates[index].target, 0, error.code, None, error, detail))
        return True

    def final_error(self) -> ResilienceError:
        error = self.last_error
        assert error is not None
        error.attempts = list(self.history)
        target = self.history[-1].target if self.history else "default"
        self.broke(target, error, error.code)
        return error

    def cancelled(self, target: str, exc: BaseException) -> None:
        """A ``BaseException`` left the attempt (a cancel, or an integration's own escape): the call is over."""
        if self.observers:  # instrumentation must close what it opened; for everyone else the exception says it
            cancel = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit)
            self.broke(target, exc, StandardErrorCode.CANCELLED if cancel else StandardErrorCode.UNKNOWN)


class ResilientExecutor:
    """Run calls with retry, rate limiting, circuit breaking, an in-flight limit and fallback.

    Example::

        executor = ResilientExecutor(ResilientConfig(retry=RetryConfig(max_retries=2)))
        result = await executor.execute(call_model, prompt, target="openai/gpt-4o")
        result = executor.execute_sync(call_model_sync, prompt, target="openai/gpt-4o")
        result = await executor.execute_chain([("openai/gpt-4o", call_a), ("anthropic/claude", call_b)])

    A named target's state (breaker, limiter, in-flight permits, retry budget) lives in ``registry`` (the
    process-wide scope by default), shared by every user naming it there; its policy comes from this executor's
    config and clock, and a user asking with a different one gets ``TargetPolicyConflictError``. Calls without a
    target name (``target`` left at ``"default"``) and the names in ``private_targets`` use state private to this
    executor. ``share_state=False`` in the config makes every target private to it. ``clock`` drives every wait.
    """

    def __init__(
        self,
        config: ResilientConfig | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        listeners: Sequence[EventListener] = (),
        private_targets: Iterable[str] = (),
    ) -> None:
        self.config = config if config is not None else ResilientConfig.from_env()
        self._own = Registry()
        if registry is None:
            registry = DEFAULT_REGISTRY if self.config.share_state else self._own
        self.registry = registry
        self.private_targets = frozenset({UNNAMED, *private_targets})
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.preflight = PreflightChecker(self.config, registry=registry, clock=self.clock)
        self.listeners: tuple[EventListener, ...] = tuple(listeners)
        self._states: dict[str, TargetState] = {}
        # Read on every call: plain attributes beat walking the frozen config each time.
        self.attempt_timeout = self.config.attempt_timeout
        self.total_timeout = self.config.total_timeout

    def add_listener(self, listener: EventListener) -> None:
        """Receive every ``ResilienceEvent`` of every call through this executor."""
        self.listeners = (*self.listeners, listener)

    def keep_private(self, targets: Iterable[str]) -> None:
        """Give ``targets`` state private to this executor (names that identify no endpoint of their own)."""
        self.private_targets = self.private_targets | frozenset(targets)

    def state(self, target: str) -> TargetState:
        """``target``'s state: from this executor's own scope if private, else from ``registry``."""
        state = self._states.get(target)
        if state is None or state.retired:
            scope = self._own if target in self.private_targets else self.registry
            state = self._states[target] = scope.get(target, self.config, self.clock)
        return state

    # --- async calls --------------------------------------------------------------------------------------

    async def execute(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, target: str = "default", **kwargs: Any
    ) -> T:
        """``await fn(*args, **kwargs)`` with the full policy stack for ``target``."""
        candidate: Candidate[T] = Candidate(target, lambda _ctx: fn(*args, **kwargs))
        result, ticket, run = await self._attempts([candidate], ())
        run.succeeded(ticket)
        return result

    async def execute_chain(self, targets: Sequence[tuple[str, Callable[[], Awaitable[T]]]]) -> T:
        """Try ``(target, fn)`` pairs in order, falling back on fallbackable errors."""
        return await self.run([Candidate(name, call_without_context(fn)) for name, fn in targets])

    async def run(self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener] = ()) -> T:
        """The async loop: each candidate's ``fn(ctx)`` returns an awaitable."""
        result, ticket, run = await self._attempts(candidates, listeners)
        run.succeeded(ticket)
        return result

    async def _attempts(
        self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener]
    ) -> tuple[T, Ticket, _Run]:
        """Retry and fall back until an attempt succeeds; return its result with its ticket still held (streams
        keep the in-flight permit until they end), or raise the last normalised error."""
        if not candidates:
            raise ValueError("at least one candidate target is needed")
        run = _Run(self, len(candidates), listeners)
        clock, preflight = self.clock, self.preflight
        for index, candidate in enumerate(candidates):
            state = self.state(candidate.target)
            if state.budget is not None:
                state.budget.record_request()
            attempt, previous_delay = 0, None
            while True:
                attempt += 1
                try:
                    ticket = preflight.try_check(state) or await run.waited(preflight.acheck, state, candidate, attempt)
                except ResilienceError as error:
                    run.rejected(candidate, attempt, error)
                    break
                if ticket.changed_state:  # this admission turned the circuit half-open
                    run.state_changed(state)
                run.attempting(candidate, attempt)
                ctx, by_deadline = run.context(candidate, attempt, index)
                try:
                    if ctx.timeout is None:
                        result: T = await candidate.fn(ctx)
                    else:
                        result = await clock.run_with_timeout(candidate.fn(ctx), ctx.timeout)
                except Exception as exc:
                    decision = run.failed(candidate, ticket, attempt, exc, by_deadline, previous_delay)
                    if not decision.retry:
                        break
                    await clock.asleep(decision.delay)
                    previous_delay = decision.delay
                    continue
                except BaseException as exc:
                    ticket.release()
                    run.cancelled(candidate.target, exc)
                    raise
                return result, ticket, run
            if not run.may_fall_back(index, candidates):
                break
        raise run.final_error()

    # --- sync calls ---------------------------------------------------------------------------------------

    def execute_sync(self, fn: Callable[..., T], /, *args: Any, target: str = "default", **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with the full policy stack for ``target``, blocking.

        A running sync call cannot be interrupted in Python: ``attempt_timeout`` reaches it as ``ctx.timeout``
        for the client's own timeout (the integrations pass it on); deadlines still bound every wait.
        """
        candidate: Candidate[T] = Candidate(target, lambda _ctx: fn(*args, **kwargs))
        result, ticket, run = self._attempts_sync([candidate], ())
        run.succeeded(ticket)
        return result

    def execute_chain_sync(self, targets: Sequence[tuple[str, Callable[[], T]]]) -> T:
        return self.run_sync([Candidate(name, call_without_context(fn)) for name, fn in targets])

    def run_sync(self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener] = ()) -> T:
        """The sync loop: each candidate's ``fn(ctx)`` returns the result."""
        result, ticket, run = self._attempts_sync(candidates, listeners)
        run.succeeded(ticket)
        return result

    def _attempts_sync(
        self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener]
    ) -> tuple[T, Ticket, _Run]:
        """Blocking twin of ``_attempts``."""
        if not candidates:
            raise ValueError("at least one candidate target is needed")
        run = _Run(self, len(candidates), listeners)
        preflight = self.preflight
        for index, candidate in enumerate(candidates):
            state = self.state(candidate.target)
            if state.budget is not None:
                state.budget.record_request()
            attempt, previous_delay = 0, None
            while True:
                attempt += 1
                try:
                    ticket = preflight.try_check(state) or run.waited_sync(preflight.check, state, candidate, attempt)
                except ResilienceError as error:
                    run.rejected(candidate, attempt, error)
                    break
                if ticket.changed_state:
                    run.state_changed(state)
                run.attempting(candidate, attempt)
                ctx, by_deadline = run.context(candidate, attempt, index)
                try:
                    result: T = candidate.fn(ctx)
                except Exception as exc:
                    decision = run.failed(candidate, ticket, attempt, exc, by_deadline, previous_delay)
                    if not decision.retry:
                        break
                    self.clock.sleep(decision.delay)
                    previous_delay = decision.delay
                    continue
                except BaseException as exc:
                    ticket.release()
                    run.cancelled(candidate.target, exc)
                    raise
                return result, ticket, run
            if not run.may_fall_back(index, candidates):
                break
        raise run.final_error()

    # --- streams ------------------------------------------------------------------------------------------
    # Opening a stream is an attempt whose result is (stream, first chunk): so retries and fallbacks happen
    # only before the first chunk, through the same loop as calls, and the ticket stays held for the stream.

    async def astream(
        self, candidates: Sequence[Candidate[AsyncIterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> AsyncIterator[T]:
        """Stream from the first candidate that yields a first chunk.

        Retries and fallbacks happen only before the first chunk; after it, an error surfaces normalised. The
        in-flight permit is held for the stream's life and released when it ends, fails, or is closed early.
        """
        openers: list[Candidate[tuple[AsyncIterator[T], T]]] = [
            Candidate(c.target, _async_opener(c.fn), c.provider, c.model) for c in candidates
        ]
        (stream, first), ticket, run = await self._attempts(openers, listeners)
        try:
            if first is not _EMPTY:
                yield first
                async for chunk in stream:
                    yield chunk
        except Exception as exc:
            raise _surfaced_mid_stream(run, ticket, exc) from exc
        else:
            run.succeeded(ticket)
        finally:
            if not ticket.settled:
                run.ended(ticket.target, closed_early=True)
            ticket.release()
            await _aclose(stream)

    def stream(
        self, candidates: Sequence[Candidate[Iterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> Iterator[T]:
        """Sync twin of ``astream``."""
        openers: list[Candidate[tuple[Iterator[T], T]]] = [
            Candidate(c.target, _sync_opener(c.fn), c.provider, c.model) for c in candidates
        ]
        (stream, first), ticket, run = self._attempts_sync(openers, listeners)
        try:
            if first is not _EMPTY:
                yield first
                yield from stream
        except Exception as exc:
            raise _surfaced_mid_stream(run, ticket, exc) from exc
        else:
            run.succeeded(ticket)
        finally:
            if not ticket.settled:
                run.ended(ticket.target, closed_early=True)
            ticket.release()
            _close(stream)

    # --- signals ------------------------------------------------------------------------------------------

    def signals_snapshot(self, target: str | None = None) -> SignalsSnapshot:
        """Signals for ``target`` (default: the first target this executor used) and every target it used."""
        if not self._states and target is None:
            raise LookupError("this executor has not called any target yet; pass target=...")
        names = list(self._states)
        primary = target or names[0]
        if primary not in self._states:
            self.state(primary)
            names.append(primary)
        targets = {name: self.state(name).signals() for name in names}  # (rebuilt if reset since)
        return SignalsSnapshot.from_targets(primary, targets, time.time())


_EMPTY: Any = object()  # the first "chunk" of a stream that ended at once: an answer, not a failure


def _async_opener(
    open_stream: Callable[[AttemptContext], AsyncIterator[T]],
) -> Callable[[AttemptContext], Awaitable[tuple[AsyncIterator[T], T]]]:
    async def open_and_peek(ctx: AttemptContext) -> tuple[AsyncIterator[T], T]:
        stream = open_stream(ctx)
        try:
            return stream, await stream.__anext__()
        except StopAsyncIteration:
            return stream, _EMPTY
        except BaseException:
            await _aclose(stream)
            raise

    return open_and_peek


def _sync_opener(
    open_stream: Callable[[AttemptContext], Iterator[T]],
) -> Callable[[AttemptContext], tuple[Iterator[T], T]]:
    def open_and_peek(ctx: AttemptContext) -> tuple[Iterator[T], T]:
        stream = iter(open_stream(ctx))
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, _EMPTY
        except BaseException:
            _close(stream)
            raise

    return open_and_peek


def _surfaced_mid_stream(run: _Run, ticket: Ticket, exc: Exception) -> ResilienceError:
    """A stream failed after its first chunk: no retry, no fallback; count it and surface it normalised.
    (Cancellation and early closes fall through to the stream's ``finally``, which releases without a verdict.)"""
    error = classify_error(exc)
    before = ticket.state.breaker.generation
    ticket.failure(error.code)
    run._state_change(ticket.state, before, "half_open" if ticket.permit.probe else "closed")
    run.broke(ticket.target, error, error.code, mid_stream=True)
    return error


def call_without_context(fn: Callable[[], T]) -> Callable[[AttemptContext], T]:
    """Adapt a zero-argument callable to a ``Candidate`` function, which is handed an ``AttemptContext``."""
    return lambda _ctx: fn()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # closing a broken stream must not mask the error being handled
            await close()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


__all__ = ["AttemptContext", "Candidate", "CircuitState", "ResilientExecutor"]
