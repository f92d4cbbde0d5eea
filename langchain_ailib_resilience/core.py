"""The decisions of one call, without I/O: admit → invoke → settle → sleep → fall back / give up.

``CallCore`` is the one place a call's decisions are made, as h11 is for HTTP/1.1: it never waits, never calls
the user's function, never sleeps. A driver asks it for the next instruction (``step()``) and performs it:

- ``CALL``: invoke ``core.candidate.fn(core.ctx)`` (bounded by ``core.ctx.timeout`` where the driver can);
  return the result (the core keeps the ticket: ``core.succeeded()`` or a stream settles it later), or hand a
  failure to ``core.failed(exc)`` and a ``BaseException`` to ``core.cancelled(exc)`` before re-raising it;
- ``WAIT``: no token or permit is free now: wait at the gate (``preflight.check``/``acheck`` with
  ``core.state`` and ``core.deadline``), then ``core.admitted(ticket)``, or ``core.rejected(error)``;
- ``SLEEP``: sleep ``core.delay`` seconds (the backoff before the next attempt);
- ``FAIL``: raise ``core.final_error()``.

The two drivers (``drive`` and ``adrive``, below) are a dozen lines each, so sync and async calls cannot drift
apart. The happy path is one ``step()`` (a non-blocking admission) and one call, with no event built unless
someone listens. Every outcome is settled in ``settle`` (via ``Ticket.settle``), and the breaker's own report
of a change it made (``Transition``) becomes this call's ``state_change`` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from .errors.classify import classify_error
from .errors.codes import StandardErrorCode
from .errors.exceptions import AttemptRecord, DeadlineExceededError, ProviderTimeoutError, ResilienceError
from .events import EventKind, EventListener, ResilienceEvent, call_listeners, emit, rejection_reason, subscribed
from .policies import retry as retry_policy
from .policies.circuit_breaker import Transition
from .policies.tokens import TokenCost
from .preflight import Ticket
from .registry import TargetState

if TYPE_CHECKING:
    from .executor import ResilientExecutor

T = TypeVar("T")

# Instructions from ``CallCore.step`` to its driver.
CALL = 0
WAIT = 1
SLEEP = 2
FAIL = 3
_ADMIT = 4  # internal: the next step takes a ticket


class AttemptContext:
    """Handed to each attempt: which target, which attempt (1-based), which candidate, and the time it has.

    Read-only by contract: the first attempt's context of a call with no deadline is shared (it is the same for
    every such call of one executor and target), so the happy path allocates none."""

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
    cost: Callable[[], TokenCost] | None = None
    """The call's estimated tokens (``policies.tokens.lazy_cost``), asked only by a target with token limits."""


class CallCore:
    """The decisions of one call over its candidates (see the module docstring for the protocol)."""

    __slots__ = (
        "_next",
        "_wait_started",
        "attempt",
        "by_deadline",
        "candidate",
        "candidates",
        "ctx",
        "deadline",
        "delay",
        "executor",
        "history",
        "index",
        "last_error",
        "listeners",
        "observers",
        "previous_delay",
        "state",
        "ticket",
    )

    def __init__(
        self,
        executor: ResilientExecutor,
        candidates: Sequence[Candidate[Any]],
        listeners: Sequence[EventListener] = (),
        observers: tuple[EventListener, ...] | None = None,
    ) -> None:
        if not candidates:
            raise ValueError("at least one candidate target is needed")
        self._start(executor, candidates, listeners, call_listeners() if observers is None else observers, None)

    def _start(
        self,
        executor: ResilientExecutor,
        candidates: Sequence[Candidate[Any]],
        listeners: Sequence[EventListener],
        observers: tuple[EventListener, ...],
        state: TargetState | None,
    ) -> None:
        self.executor = executor
        self.candidates = candidates
        total = executor.total_timeout
        self.deadline: float | None = None if total is None else executor.clock.now() + total
        self.history: list[AttemptRecord] = []
        # Decisions go to the executor's and the call's listeners; observers (instrumentation) hear every event.
        own = (*executor.listeners, *listeners) if listeners else executor.listeners
        self.observers = observers
        self.listeners: tuple[EventListener, ...] = (*own, *observers) if observers else own
        # Set when first needed: ticket and ctx on admission, delay on a retry, last_error on a failure.
        self.ticket: Ticket
        self.ctx: AttemptContext
        self.by_deadline: bool
        self.delay: float
        self.last_error: ResilienceError
        self._wait_started: float | None
        self._enter(0, state)

    # --- where the call is ----------------------------------------------------------------------------

    def _enter(self, index: int, state: TargetState | None = None) -> None:
        """Start on candidate ``index`` (``state``: its state, already looked up and counted by the happy path)."""
        self.index = index
        self.candidate = candidate = self.candidates[index]
        if state is None:
            state = self.executor.state(candidate.target)
            if state.budget is not None:
                state.budget.record_request()
        self.state: TargetState = state
        self.attempt = 0
        self.previous_delay: float | None = None
        self._next = _ADMIT

    @property
    def target(self) -> str:
        return self.candidate.target

    # --- the protocol ---------------------------------------------------------------------------------

    def step(self) -> int:
        """The next instruction. On the happy path this admits at once and returns ``CALL``."""
        nxt = self._next
        if nxt == _ADMIT:
            self.attempt += 1
            try:
                ticket = self.executor.preflight.try_check(self.state, cost=self.candidate.cost)
            except ResilienceError as error:
                self.rejected(error)
                return self.step()
            if ticket is None:
                self._wait_started = self.executor.clock.now()
                self._next = WAIT
                return WAIT
            self._admit(ticket)
            return CALL
        if nxt == SLEEP:
            self._next = _ADMIT
            self.previous_delay = self.delay
            return SLEEP
        return nxt

    def admitted(self, ticket: Ticket) -> None:
        """The driver's wait at the gate gave ``ticket``."""
        started, self._wait_started = self._wait_started, None
        if started is not None:
            waited = self.executor.clock.now() - started
            if waited > 0:
                self.event(ResilienceEvent("rate_limit_wait", self.candidate.target, self.attempt, delay=waited))
        self._admit(ticket)
        self._next = CALL

    def _admit(self, ticket: Ticket) -> None:
        self.ticket = ticket
        transition = ticket.permit.transition
        if transition is not None:  # this admission turned the circuit half-open
            self.state_changed(transition)
        candidate, attempt = self.candidate, self.attempt
        if self.observers:  # the happy path's events are built only when an observer listens, and only for it
            detail = {"provider": candidate.provider, "model": candidate.model} if candidate.provider else {}
            emit(
                self.observers, ResilienceEvent("attempt", candidate.target, attempt, detail=detail), subscribers=False
            )
        executor = self.executor
        per_attempt = executor.attempt_timeout
        if self.deadline is not None:
            left = self.deadline - executor.clock.now()
            if per_attempt is None or left < per_attempt:
                self.ctx = AttemptContext(candidate.target, attempt, self.index, max(left, 0.0))
                self.by_deadline = True
                return
        self.ctx = AttemptContext(candidate.target, attempt, self.index, per_attempt)
        self.by_deadline = False

    def rejected(self, error: ResilienceError) -> None:
        """Preflight refused (open circuit, rate wait too long, in-flight full, deadline): no request was sent."""
        self._wait_started = None
        candidate = self.candidate
        self._remember(error)
        detail = {"reason": rejection_reason(error)}
        self.event(
            ResilienceEvent("rejected", candidate.target, self.attempt, error.code, error.retry_after, error, detail)
        )
        self._fall_back_or_fail()

    def failed(self, exc: Exception) -> None:
        """The attempt raised ``exc``: normalise it, settle the ticket, decide: retry (``SLEEP``), fall back, fail."""
        error = self._normalise(exc)
        self.settle(error)
        self._remember(error)
        executor, candidate, attempt = self.executor, self.candidate, self.attempt
        decision = retry_policy.decide(
            executor.config.retry,  # the caller's retry policy; the target's shared state holds breaker/limits
            error,
            attempt,
            now=executor.clock.now(),
            deadline=self.deadline,
            previous_delay=self.previous_delay,
            budget=self.state.budget,
        )
        kind: EventKind = "retry" if decision.retry else "give_up"
        detail = {"reason": decision.reason}
        self.event(ResilienceEvent(kind, candidate.target, attempt, error.code, decision.delay, error, detail))
        if decision.retry:
            self.delay = decision.delay
            self._next = SLEEP
        else:
            self._fall_back_or_fail()

    def settle(self, error: ResilienceError) -> None:
        """Settle the held ticket with a failure (the rule lives in ``Ticket.settle``); report the breaker's change."""
        transition = self.ticket.settle(error)
        if transition is not None:
            self.state_changed(transition)

    def succeeded(self, answer: Any = None) -> None:
        """The call's answer arrived (or its stream ended well): count a success; the answer's rate-limit headers
        and usage teach the target (adaptive limits, token limits)."""
        ticket = self.ticket
        transition = ticket.success(answer)
        if transition is not None:
            self.state_changed(transition)
        if self.observers:
            emit(self.observers, ResilienceEvent("success", ticket.state.target), subscribers=False)

    def closed_early(self) -> None:
        """A stream was closed before its end (or its consumer was cancelled): no verdict."""
        ticket = self.ticket
        if ticket.settled:
            return
        if self.observers:
            detail = {"closed_early": True}
            emit(self.observers, ResilienceEvent("success", ticket.state.target, detail=detail), subscribers=False)
        ticket.release()

    def broke_mid_stream(self, exc: Exception) -> ResilienceError:
        """A stream failed after its first chunk: no retry, no fallback; count it and surface it normalised."""
        error = classify_error(exc)
        self.settle(error)
        self._broke(error, error.code, mid_stream=True)
        return error

    def cancelled(self, exc: BaseException) -> None:
        """A ``BaseException`` left the attempt (a cancel, or an integration's own escape): the call is over."""
        self.ticket.release()  # (no-op if already settled)
        if self.observers:  # instrumentation must close what it opened; for everyone else the exception says it
            cancel = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit)
            self._broke(exc, StandardErrorCode.CANCELLED if cancel else StandardErrorCode.UNKNOWN)

    def final_error(self) -> ResilienceError:
        """The error the call ends with, carrying every attempt's record."""
        error = self.last_error
        error.attempts = list(self.history)
        target = self.history[-1].target if self.history else self.candidate.target
        self._broke(error, error.code, target=target)
        return error

    # --- decisions ------------------------------------------------------------------------------------

    def _normalise(self, exc: Exception) -> ResilienceError:
        candidate = self.candidate
        if isinstance(exc, TimeoutError) and not isinstance(exc, ResilienceError):
            deadline = self.deadline
            if self.by_deadline and deadline is not None and self.executor.clock.now() >= deadline:
                error: ResilienceError = DeadlineExceededError(
                    f"total timeout of {self.executor.total_timeout}s ran out during an attempt",
                    provider=candidate.provider,
                    model=candidate.model,
                )
                error.__cause__ = exc
                return error
            error = classify_error(exc, provider=candidate.provider, model=candidate.model)
            if not isinstance(error, ProviderTimeoutError):
                error = ProviderTimeoutError(str(exc) or "attempt timed out", provider=candidate.provider)
                error.__cause__ = exc
            return error
        return classify_error(exc, provider=candidate.provider, model=candidate.model)

    def _fall_back_or_fail(self) -> None:
        """After the current candidate gave up: move to the next one if the last error allows, else ``FAIL``."""
        error, index = self.last_error, self.index
        if (
            index + 1 >= len(self.candidates)
            or isinstance(error, DeadlineExceededError)
            or (self.deadline is not None and self.executor.clock.now() >= self.deadline)
            or not error.fallbackable
        ):
            self._next = FAIL
            return
        nxt = self.candidates[index + 1]
        detail = {"from_index": index, "to_index": index + 1, "next_target": nxt.target}
        self.event(ResilienceEvent("fallback", self.candidate.target, 0, error.code, None, error, detail))
        self._enter(index + 1)

    def _remember(self, error: ResilienceError) -> None:
        target = self.candidate.target
        self.history.append(AttemptRecord(target, self.attempt, error.code, error.message, error.local))
        self.last_error = error

    # --- events ---------------------------------------------------------------------------------------

    def event(self, event: ResilienceEvent) -> None:
        emit(self.listeners, event)

    def state_changed(self, transition: Transition) -> None:
        """For this call's listeners: process-wide subscribers hear every transition from the breaker itself."""
        if self.listeners:
            detail = {"from_state": transition[0].value, "to_state": transition[1].value}
            emit(self.listeners, ResilienceEvent("state_change", self.state.target, detail=detail), subscribers=False)

    def _broke(
        self, error: BaseException, code: StandardErrorCode, *, mid_stream: bool = False, target: str | None = None
    ) -> None:
        """The call ended without an answer: its last error, a stream broken after its first chunk, a cancel."""
        detail = {"mid_stream": True} if mid_stream else {}
        where = target if target is not None else self.candidate.target
        self.event(ResilienceEvent("failure", where, 0, code, None, error, detail))


# --- the drivers, and their happy path ------------------------------------------------------------------------
# With no deadline and nobody listening, a call whose first attempt is admitted at once and succeeds has no
# decision to make and no event to build: ``_gate`` takes the ticket and the driver calls and counts the
# success, without building a core. Anything else (a wait, a rejection, a failure) is handed to a ``CallCore``
# at the point reached (``_handover``), which makes every decision from there.


Bound = tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""``execute``'s call, ``(target, fn, args, kwargs)``: ``fn(*args, **kwargs)`` for ``target``, no ``Candidate`` yet."""


def bind(candidates: Sequence[Candidate[Any]], call: Bound | None) -> Sequence[Candidate[Any]]:
    """The candidates as a core calls them (``fn(ctx)``). Given ``call`` (``execute``'s), its one candidate: the
    happy path calls ``fn(*args, **kwargs)`` itself, and the candidate and its closure taking a context are built
    only here, when a core takes over."""
    if call is None:
        return candidates
    target, fn, args, kwargs = call
    return (Candidate(target, lambda _ctx: fn(*args, **kwargs)),)


def _gate(
    executor: ResilientExecutor,
    candidates: Sequence[Candidate[Any]],
    listeners: Sequence[EventListener],
    call: Bound | None,
) -> Ticket | CallCore | TargetState:
    """A ticket for the first candidate, free now, when the happy path needs no core; its state when the only
    thing in the way is a wait at its gate that nobody hears of; else the core to drive."""
    observers = call_listeners()
    if observers or listeners or not executor.quiet or not (candidates or call):
        return CallCore(executor, bind(candidates, call), listeners, observers)
    if call is not None:
        target, cost = call[0], None
    else:
        target, cost = candidates[0].target, candidates[0].cost
    state = executor._states.get(target)  # (``executor.state``, inlined for the happy path)
    if state is None or state.retired:
        state = executor.state(target)
    if state.budget is not None:
        state.budget.record_request()
    backpressure = state.backpressure
    if backpressure is not None and backpressure._waiters:  # (``.waiting``, without a property call)
        ticket = None  # callers queue for a permit: a newcomer waits behind them (FIFO), no need to try
    else:
        try:
            ticket = executor.preflight.try_check(state, cost=cost)
        except ResilienceError as error:
            return _rejected_first(executor, bind(candidates, call), state, error)
    if ticket is None:
        if not subscribed("rate_limit_wait"):
            return state  # a quiet wait: the driver waits at the gate and goes on as on the happy path
        core = _handover(executor, bind(candidates, call), state)
        core._wait_started = executor.clock.now()
        core._next = WAIT
        return core
    return ticket


def _handover(executor: ResilientExecutor, candidates: Sequence[Candidate[Any]], state: TargetState) -> CallCore:
    """A core taking over the first attempt (already counted toward the budget) where the happy path left it."""
    core = CallCore.__new__(CallCore)
    core._start(executor, candidates, (), (), state)
    core.attempt = 1
    return core


def _rejected_first(
    executor: ResilientExecutor, candidates: Sequence[Candidate[Any]], state: TargetState, error: ResilienceError
) -> CallCore:
    core = _handover(executor, candidates, state)
    core.rejected(error)
    return core


def _failed_first(
    executor: ResilientExecutor,
    candidates: Sequence[Candidate[Any]],
    ticket: Ticket,
    ctx: AttemptContext,
    exc: Exception,
) -> CallCore:
    core = _handover(executor, candidates, ticket.state)
    core.ticket, core.ctx, core.by_deadline = ticket, ctx, False
    core.failed(exc)
    return core


def drive(
    executor: ResilientExecutor,
    candidates: Sequence[Candidate[Any]],
    listeners: Sequence[EventListener] = (),
    *,
    core: CallCore | None = None,
    call: Bound | None = None,
) -> Any:
    """One call, blocking: the result of the winning attempt, counted as a success. Given ``core`` (a stream's
    opening), that core is driven and the winner's ticket stays held for the stream. Given ``call`` (``execute``'s,
    with no ``candidates``), that is the one candidate (see ``bind``).

    A running sync call cannot be interrupted in Python: ``ctx.timeout`` is for the client's own timeout."""
    start = _gate(executor, candidates, listeners, call) if core is None else core
    if isinstance(start, TargetState):
        state = start
        try:
            start = executor.preflight.check(state, cost=None if call else candidates[0].cost)
        except ResilienceError as error:
            start = _rejected_first(executor, bind(candidates, call), state, error)
    if isinstance(start, Ticket):
        try:
            if call is None:
                result = candidates[0].fn(executor.first_context(start.state.target))
            else:
                result = call[1](*call[2], **call[3]) if call[3] else call[1](*call[2])
        except Exception as exc:
            ctx = executor.first_context(start.state.target)
            start = _failed_first(executor, bind(candidates, call), start, ctx, exc)
        except BaseException:
            start.release()
            raise
        else:
            start.success(result)
            return result
    assert isinstance(start, CallCore)
    succeed = core is None
    core = start
    while True:
        op = core.step()
        if op == CALL:
            try:
                result = core.candidate.fn(core.ctx)
            except Exception as exc:
                core.failed(exc)
            except BaseException as exc:
                core.cancelled(exc)
                raise
            else:
                if succeed:
                    core.succeeded(result)
                return result
        elif op == WAIT:
            try:
                ticket = executor.preflight.check(core.state, deadline=core.deadline, cost=core.candidate.cost)
            except ResilienceError as error:
                core.rejected(error)
            else:
                core.admitted(ticket)
        elif op == SLEEP:
            executor.clock.sleep(core.delay)
        else:
            raise core.final_error()


async def adrive(
    executor: ResilientExecutor,
    candidates: Sequence[Candidate[Any]],
    listeners: Sequence[EventListener] = (),
    *,
    core: CallCore | None = None,
    call: Bound | None = None,
) -> Any:
    """One call on an event loop: the awaited result of the winning attempt (see ``drive``)."""
    start = _gate(executor, candidates, listeners, call) if core is None else core
    if isinstance(start, TargetState):
        state = start
        try:
            start = await executor.preflight.acheck(state, cost=None if call else candidates[0].cost)
        except ResilienceError as error:
            start = _rejected_first(executor, bind(candidates, call), state, error)
    if isinstance(start, Ticket):
        timeout = executor.attempt_timeout
        try:
            if call is None:
                awaitable = candidates[0].fn(executor.first_context(start.state.target))
            else:
                awaitable = call[1](*call[2], **call[3]) if call[3] else call[1](*call[2])
            if timeout is not None:
                awaitable = executor.clock.arun_with_timeout(awaitable, timeout)
            result = await awaitable
        except Exception as exc:
            ctx = executor.first_context(start.state.target)
            start = _failed_first(executor, bind(candidates, call), start, ctx, exc)
        except BaseException:
            start.release()
            raise
        else:
            start.success(result)
            return result
    assert isinstance(start, CallCore)
    succeed = core is None
    core = start
    while True:
        op = core.step()
        if op == CALL:
            ctx = core.ctx
            try:
                if ctx.timeout is None:
                    result = await core.candidate.fn(ctx)
                else:
                    result = await executor.clock.arun_with_timeout(core.candidate.fn(ctx), ctx.timeout)
            except Exception as exc:
                core.failed(exc)
            except BaseException as exc:
                core.cancelled(exc)
                raise
            else:
                if succeed:
                    core.succeeded(result)
                return result
        elif op == WAIT:
            try:
                ticket = await executor.preflight.acheck(core.state, deadline=core.deadline, cost=core.candidate.cost)
            except ResilienceError as error:
                core.rejected(error)
            else:
                core.admitted(ticket)
        elif op == SLEEP:
            await executor.clock.asleep(core.delay)
        else:
            raise core.final_error()


__all__ = [
    "CALL",
    "FAIL",
    "SLEEP",
    "WAIT",
    "AttemptContext",
    "CallCore",
    "Candidate",
    "adrive",
    "drive",
]
