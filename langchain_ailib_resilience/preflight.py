"""The gate before a request: breaker admission, a rate token and an in-flight permit, taken atomically.

``check``/``acheck`` reserve all three or none: if a later step fails (or the caller is cancelled while
waiting), everything already taken is given back. The returned ``Ticket`` reports the outcome to the breaker
and frees the in-flight permit exactly once. The executor and the LiteLLM callback both gate through here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from . import departures
from .clock import Clock
from .config import ResilientConfig
from .errors.classify import classify_error
from .errors.codes import StandardErrorCode
from .errors.exceptions import DeadlineExceededError, ResilienceError
from .feedback import reported_usage
from .policies.circuit_breaker import BreakerPermit, Transition
from .policies.tokens import NOTHING, Reservation, TokenCost
from .registry import DEFAULT_REGISTRY, Registry, TargetState
from .state._store import loop_running


async def _arefresh_breaker(state: TargetState) -> None:
    """A shared breaker's flag, read through the store's async client before admission (never on the loop)."""
    arefresh = getattr(state.breaker, "arefresh", None)
    if arefresh is not None:
        await arefresh()


def says_nothing_of_provider(error: ResilienceError) -> bool:
    """A local rejection (ours or a nested gate's) or our own deadline: nothing reached the provider, or what did
    was cut short by us. Such outcomes free the ticket without a verdict."""
    return error.local or isinstance(error, DeadlineExceededError)


class Ticket:
    """What a passed preflight holds; settle it once with ``success()``, ``failure(...)``, ``settle(error)`` or
    ``release()``. Each returns the breaker's state change it caused, if any (``Transition``)."""

    __slots__ = ("_settled", "permit", "reserved", "state")

    def __init__(self, state: TargetState, permit: BreakerPermit, reserved: Reservation = NOTHING) -> None:
        self.state = state
        self.permit = permit
        self.reserved = reserved
        """The call's token reservation (token limits): reconciled on success, given back otherwise."""
        self._settled = False
        if departures.enabled and state.pacer is not None and state.pacer.strict:
            departures.granted(state.pacer.limiter, state.pacer.clock.now())

    @property
    def target(self) -> str:
        return self.state.target

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def transition(self) -> Transition | None:
        """The change this admission made to the circuit (open → half-open), reported by the breaker."""
        return self.permit.transition

    @property
    def changed_state(self) -> bool:
        return self.permit.transition is not None

    def _free(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        if self.state.backpressure is not None:
            self.state.backpressure.release()
        if self.reserved.parts and self.state.token_limits is not None:
            self.state.token_limits.refund(self.reserved)  # failed, refused or cancelled: nothing to count
        return True

    def success(self, answer: Any = None) -> Transition | None:
        """The provider answered: count a success, free the permit; ``answer`` (a LiteLLM or LangChain
        response) teaches the target what its headers say and what it used."""
        if self._settled:  # (``_free`` inlined: this runs on every successful call)
            return None
        self._settled = True
        state = self.state
        if state.backpressure is not None:
            state.backpressure.release()
        if state.pacer is not None:
            state.learn(answer)
        if self.reserved.parts and state.token_limits is not None:
            usage = reported_usage(answer)
            if usage is not None:
                state.token_limits.reconcile(self.reserved, TokenCost(*usage))
        return state.breaker.record_success(self.permit)

    def failure(self, error: BaseException | StandardErrorCode | None = None) -> Transition | None:
        """The provider failed: count it if its code indicts the provider; free the permit. An exception (not
        a bare code) also teaches the target: a 429/503 with Retry-After pauses it for every caller, and a 429
        its pacer learns from (adaptive, or a few ms early) is not counted."""
        if not self._free():
            return None
        if isinstance(error, StandardErrorCode) or error is None:
            return self.state.breaker.record_failure(self.permit, error)
        normalised = error if isinstance(error, ResilienceError) else classify_error(error)
        state = self.state
        state.feedback(normalised)
        if state.paces(normalised):  # the limiter's to act on, not the breaker's to count
            state.breaker.release(self.permit)
            return None
        return state.breaker.record_failure(self.permit, normalised.code)

    def settle(self, error: ResilienceError) -> Transition | None:
        """Settle with a normalised failure: the one place of the rule "a local rejection (a nested gate's) or our
        own deadline says nothing about the provider: release; anything else is the provider's: count it"."""
        if says_nothing_of_provider(error):
            self.release()
            return None
        return self.failure(error)

    def release(self) -> None:
        """No verdict (cancelled, abandoned, caller error): free the permit and any probe slot."""
        if self._free():
            self.state.breaker.release(self.permit)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.success()
        elif isinstance(exc, Exception):
            self.failure(exc)
        else:
            self.release()


class PreflightChecker:
    """Gate requests to a target on its circuit, rate limit and in-flight count, before they are sent.

    Example::

        checker = PreflightChecker(ResilientConfig(rate_limiter=RateLimiterConfig(requests_per_second=5)))
        with checker.check("openai/gpt-4o") as ticket:   # raises CircuitOpenError, RateLimitExceededError
            response = send()                           #   or BackpressureError before anything is sent
    """

    def __init__(
        self,
        config: ResilientConfig | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
    ) -> None:
        from .clock import SYSTEM_CLOCK

        self.config = config if config is not None else ResilientConfig.from_env()
        self.registry = registry if registry is not None else DEFAULT_REGISTRY
        self.clock = clock or SYSTEM_CLOCK

    def state(self, target: str) -> TargetState:
        return self.registry.get(target, self.config, self.clock)

    def _bounds(self, state: TargetState, deadline: float | None) -> tuple[float | None, float | None]:
        rate_wait = state.config.rate_limiter.max_wait
        inflight_wait = state.config.backpressure.max_wait
        if deadline is not None:
            left = deadline - self.clock.now()
            if left <= 0:
                raise DeadlineExceededError(f"no time left to call {state.target!r}", local=True)
            rate_wait = left if rate_wait is None else min(rate_wait, left)
            inflight_wait = left if inflight_wait is None else min(inflight_wait, left)
        return rate_wait, inflight_wait

    def try_check(
        self, state: TargetState, *, tokens: float = 1, cost: Callable[[], TokenCost] | None = None
    ) -> Ticket | None:
        """Non-blocking fast path: a ticket if admission, tokens and a permit are all free now, else ``None``
        (nothing held). An open circuit still raises ``CircuitOpenError``. On an event loop's thread a target
        whose state lives in a store is always ``None``: only ``acheck`` may talk to the store there."""
        if state.uses_store and loop_running():
            return None
        if state.gate is not None and state.gate.remaining() > 0:
            return None
        permit = state.breaker.admit()
        limiter, backpressure = state.limiter, state.backpressure
        if limiter is not None and not limiter.try_acquire(tokens):
            state.breaker.release(permit)
            return None
        reserved = NOTHING
        if state.token_limits is not None and cost is not None:
            maybe = state.token_limits.try_acquire(cost())
            if maybe is None:
                self._give_back(state, permit, tokens if limiter is not None else 0.0)
                return None
            reserved = maybe
        if backpressure is not None and not backpressure.try_acquire():
            self._give_back(state, permit, tokens if limiter is not None else 0.0, reserved=reserved)
            return None
        return Ticket(state, permit, reserved)

    def check(
        self,
        target: str | TargetState,
        *,
        tokens: float = 1,
        deadline: float | None = None,
        cost: Callable[[], TokenCost] | None = None,
    ) -> Ticket:
        """Reserve admission, ``tokens`` and a permit for ``target`` (blocking), or raise a local rejection."""
        state = target if isinstance(target, TargetState) else self.state(target)
        rate_wait, inflight_wait = self._bounds(state, deadline)
        gate = state.gate
        if gate is not None:
            if not loop_running():
                gate.sync()
            until = None if rate_wait is None else self.clock.now() + rate_wait
            while (left := gate.wait_needed(self._left(until), state.target)) > 0:
                self.clock.sleep(left)
        permit = state.breaker.admit()
        taken, holding, reserved = 0.0, False, NOTHING
        try:
            if state.limiter is not None:
                state.limiter.acquire_or_raise(tokens=tokens, timeout=rate_wait)
                taken = tokens
            if state.token_limits is not None and cost is not None:
                reserved = state.token_limits.acquire(cost(), rate_wait)
            if state.backpressure is not None:
                state.backpressure.acquire(timeout=inflight_wait)
                holding = True
            permit = self._readmit_if_stale(state, permit)
        except BaseException:
            self._give_back(state, permit, taken, holding, reserved)
            raise
        return Ticket(state, permit, reserved)

    async def acheck(
        self,
        target: str | TargetState,
        *,
        tokens: float = 1,
        deadline: float | None = None,
        cost: Callable[[], TokenCost] | None = None,
    ) -> Ticket:
        """Async ``check``; a cancelled caller gives back everything it held; a state store is only awaited."""
        state = target if isinstance(target, TargetState) else self.state(target)
        rate_wait, inflight_wait = self._bounds(state, deadline)
        if state.uses_store:
            await _arefresh_breaker(state)
        gate = state.gate
        if gate is not None:
            await gate.async_sync()
            until = None if rate_wait is None else self.clock.now() + rate_wait
            while (left := gate.wait_needed(self._left(until), state.target)) > 0:
                await self.clock.asleep(left)
        permit = state.breaker.admit()
        taken, holding, reserved = 0.0, False, NOTHING
        try:
            if state.limiter is not None:
                await state.limiter.aacquire_or_raise(tokens=tokens, timeout=rate_wait)
                taken = tokens
            if state.token_limits is not None and cost is not None:
                reserved = await state.token_limits.aacquire(cost(), rate_wait)
            if state.backpressure is not None:
                await state.backpressure.aacquire(timeout=inflight_wait)
                holding = True
            permit = self._readmit_if_stale(state, permit)
        except BaseException:
            self._give_back(state, permit, taken, holding, reserved)
            raise
        return Ticket(state, permit, reserved)

    def _left(self, until: float | None) -> float | None:
        return None if until is None else max(0.0, until - self.clock.now())

    @staticmethod
    def _readmit_if_stale(state: TargetState, permit: BreakerPermit) -> BreakerPermit:
        """After waiting for a token or a permit, ask the breaker again if its state changed meanwhile: a circuit
        that opened while this caller queued must stop it here, before anything is sent."""
        if permit.generation == state.breaker.generation:
            return permit
        state.breaker.release(permit)
        readmitted = state.breaker.admit()
        if permit.transition is not None and readmitted.transition is None:  # keep the change this caller made
            return BreakerPermit(readmitted.generation, readmitted.probe, permit.transition)
        return readmitted

    @staticmethod
    def _give_back(
        state: TargetState,
        permit: BreakerPermit,
        taken: float,
        holding: bool = False,
        reserved: Reservation = NOTHING,
    ) -> None:
        state.breaker.release(permit)
        if reserved.parts and state.token_limits is not None:
            state.token_limits.refund(reserved)
        if taken and state.limiter is not None:
            state.limiter.refund(taken)
        if holding and state.backpressure is not None:
            state.backpressure.release()
