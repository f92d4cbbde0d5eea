"""Who owns a target's state: a registry scope (resilience4j's ``CircuitBreakerRegistry``, Polly's
``ResiliencePipelineRegistry``).

A target's *policy* (breaker, rate limit, in-flight limit, retry budget, state store, clock) belongs to the
registry scope the target lives in; a call's policy (retry, timeouts) belongs to the caller. Named targets
(``"openai/gpt-4o@http://host/v1"``) are shared by every user in one scope, the process-wide
``DEFAULT_REGISTRY`` unless a ``Registry()`` is passed, so a ``ResilientChatModel``, a LiteLLM callback and
``resilient_acompletion`` naming one target see one breaker. Two users asking one scope for one target with
different target policies get ``TargetPolicyConflictError`` naming the target and the fields: nothing is
silently shared under the first user's settings. Unnamed calls (``ResilientExecutor.execute`` without
``target=``, a ``FallbackChain`` of plain callables, a chat model instance that names no model) live in a
scope private to their executor.

``clear()`` (``reset_registry()``) retires every state it held: a user that cached one (an executor) builds it
afresh on its next call.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .config import ConfigError, ResilientConfig
from .errors.codes import StandardErrorCode
from .errors.exceptions import ResilienceError
from .errors.rate_headers import parse_rate_limit_headers
from .errors.retry_after import headers_of
from .events import publish_transition
from .feedback import response_headers
from .policies.adaptive import START_RATE, AdaptiveRate
from .policies.backpressure import Backpressure
from .policies.circuit_breaker import CircuitBreaker
from .policies.pause import PauseGate, pause_asked
from .policies.rate_limiter import RateLimiter
from .policies.retry import RetryBudget
from .policies.tokens import TOKEN_DIMENSIONS, TokenDimension, TokenLimits
from .signals import TargetSignals


@dataclass(slots=True)
class TargetState:
    """The live policies of one target. ``limiter``/``backpressure`` are ``None`` when disabled."""

    target: str
    config: ResilientConfig
    breaker: CircuitBreaker
    limiter: RateLimiter | None
    backpressure: Backpressure | None
    budget: RetryBudget | None
    state_backend: str = "local"
    clock: Clock = SYSTEM_CLOCK
    retired: bool = False
    """Set when its registry is cleared: whoever cached this state must ask the registry again."""
    uses_store: bool = False
    """Limiter or breaker talk to a state store (``state_url``): async paths must await it, never call it."""
    gate: PauseGate | None = None
    """The provider's pause for a target with no limiter (a limiter keeps it in its bucket); ``None`` when off."""

    def pause(self, seconds: float) -> None:
        """Hold every caller of this target for ``seconds`` (in every process, with a store)."""
        if self.limiter is not None:
            self.limiter.pause(seconds)
        elif self.gate is not None:
            self.gate.pause(seconds)

    token_limits: TokenLimits | None = None
    """Token buckets (tokens, input and output per minute); ``None`` when no token limit is configured."""
    pacer: AdaptiveRate | None = None
    """The limiter's learned rate (headers, 429 feedback, spacing margin); ``None`` without a limiter."""

    def feedback(self, error: ResilienceError) -> None:
        """What a failed attempt teaches the target: its headers and its 429 set the learned rate; a 429/503
        with Retry-After pauses it."""
        if error.local:
            return
        pacer = self.pacer
        if pacer is not None:
            if pacer.adaptive and error.__cause__ is not None:
                parsed = parse_rate_limit_headers(headers_of(error.__cause__))
                if parsed is not None:
                    pacer.headers(parsed)
            if error.code is StandardErrorCode.RATE_LIMITED or error.status_code == 429:
                pacer.rate_limited(error.retry_after)
        if self.config.rate_limiter.pause_on_retry_after:
            seconds = pause_asked(error)
            if seconds > 0:
                self.pause(seconds)

    def paces(self, error: ResilienceError) -> bool:
        """Whether ``error`` is a 429 this target's pacer acts on, so says nothing about the provider's health."""
        pacer = self.pacer
        return pacer is not None and error.code is StandardErrorCode.RATE_LIMITED and pacer.absorbs(error.retry_after)

    def learn(self, answer: Any) -> None:
        """What an answer teaches the target: the limits its headers state."""
        pacer = self.pacer
        if pacer is None:
            return
        if pacer.adaptive and answer is not None:
            parsed = parse_rate_limit_headers(response_headers(answer))
            if parsed is not None:
                pacer.headers(parsed)
        if pacer.adaptive or pacer.margin or pacer.aimd is not None:
            pacer.succeeded()

    def signals(self) -> TargetSignals:
        breaker = self.breaker
        return TargetSignals(
            target=self.target,
            circuit_state=breaker.state.value,
            current_inflight=self.backpressure.inflight if self.backpressure else 0,
            max_inflight=self.backpressure.max_inflight if self.backpressure else None,
            rate_remaining=self.limiter.remaining if self.limiter else None,
            rate_waiting=self.limiter.waiting if self.limiter else 0,
            inflight_waiting=self.backpressure.waiting if self.backpressure else 0,
            consecutive_failures=breaker.failure_count,
            cooldown_remaining=breaker.cooldown_remaining,
            opened_total=breaker.opened_total,
            rejected_total=breaker.rejected_total,
            state_backend=getattr(self.limiter, "backend", self.state_backend),
            rate_limit=self.limiter.rate if self.limiter else None,
            rate_source=self.pacer.source if self.pacer else ("configured" if self.limiter else None),
            spacing_margin=self.pacer.margin if self.pacer else 0.0,
            paused_for=self.gate.remaining() if self.gate else 0.0,
        )


def build_target_state(target: str, config: ResilientConfig, clock: Clock) -> TargetState:
    rl, bp = config.rate_limiter, config.backpressure
    limiter: RateLimiter | None = None
    backend = "local"
    if rl.requests_per_second is not None or rl.adaptive:
        # Adaptive with nothing configured starts slowly, one at a time (``AdaptiveRate``'s slow start).
        rate = rl.requests_per_second or START_RATE
        burst = rl.effective_burst if rl.requests_per_second is not None else 1
        if config.state_url:
            from .state import build_shared_limiter

            limiter, backend = build_shared_limiter(target, config, clock, rate=rate, burst=burst)
        else:
            limiter = RateLimiter(rate, burst, max_wait=rl.max_wait, clock=clock, name=target)
    pacer: AdaptiveRate | None = None
    if limiter is not None and (rl.adaptive or rl.pause_on_retry_after):
        pacer = AdaptiveRate(
            limiter,
            clock,
            ceiling=rl.requests_per_second,
            adaptive=rl.adaptive,
            burst=rl.burst_size or (rl.effective_burst if rl.requests_per_second is not None else 1),
        )
    backpressure = (
        Backpressure(bp.max_inflight, max_wait=bp.max_wait, max_queue=bp.max_queue, clock=clock, name=target)
        if bp.max_inflight is not None
        else None
    )
    breaker = _build_breaker(target, config, clock)
    token_limits = _build_token_limits(target, config, clock)
    gate: PauseGate | None = None
    if limiter is None and rl.pause_on_retry_after:
        if config.state_url:
            from .state import build_pause_gate

            gate = build_pause_gate(target, config, clock)
        else:
            gate = PauseGate(clock)
    return TargetState(
        target=target,
        config=config,
        breaker=breaker,
        limiter=limiter,
        backpressure=backpressure,
        budget=RetryBudget(config.retry.budget, clock) if config.retry.budget is not None else None,
        state_backend=backend,
        clock=clock,
        uses_store=bool(config.state_url)
        and (
            limiter is not None
            or hasattr(breaker, "arefresh")
            or (gate is not None and gate.shared)
            or token_limits is not None
        ),
        gate=gate,
        pacer=pacer,
        token_limits=token_limits,
    )


def _build_token_limits(target: str, config: ResilientConfig, clock: Clock) -> TokenLimits | None:
    rl = config.rate_limiter
    buckets: dict[TokenDimension, RateLimiter] = {}
    for dimension in TOKEN_DIMENSIONS:
        per_minute = rl.token_limits.get(dimension)
        if per_minute is None:
            continue
        rate, burst = per_minute / 60.0, rl.token_bucket(per_minute)
        if config.state_url:
            from .state import build_token_bucket

            buckets[dimension] = build_token_bucket(target, dimension, config, clock, rate, burst)
        else:
            name = f"{target} {dimension}"
            buckets[dimension] = RateLimiter(rate, burst, max_wait=rl.max_wait, clock=clock, name=name)
    return TokenLimits(buckets) if buckets else None


def _build_breaker(target: str, config: ResilientConfig, clock: Clock) -> CircuitBreaker:
    if config.share_breaker_state and config.state_url:
        from .state import build_breaker  # only then: keeps the Redis code off the default path

        breaker = build_breaker(target, config, clock)
    else:
        breaker = CircuitBreaker.from_config(config.circuit_breaker, clock=clock, name=target)
    breaker.add_listener(publish_transition)  # the breaker reports its own transitions, whoever caused them
    return breaker


class TargetPolicyConflictError(ConfigError):
    """One registry scope was asked for one target under two different target policies."""

    def __init__(self, target: str, differences: list[str]) -> None:
        self.target = target
        self.differences = differences
        super().__init__(
            f"target {target!r} already has resilience state in this registry with a different policy: "
            f"{'; '.join(differences)}. One target has one breaker, limiter and in-flight limit per scope: use "
            "the same settings, or keep them apart with registry=Registry() (or another target name)"
        )


# The parts of a ResilientConfig that are the target's, not the call's (retry counts and timeouts are the call's).
POLICY_FIELDS = ("rate_limiter", "circuit_breaker", "backpressure", "state_url", "share_breaker_state")


def policy_differences(a: ResilientConfig, clock_a: Clock, b: ResilientConfig, clock_b: Clock) -> list[str]:
    """``"field: existing -> requested"`` for every target-policy field where ``a`` and ``b`` differ."""
    out: list[str] = []
    pairs: list[tuple[str, Any, Any]] = [(f, getattr(a, f), getattr(b, f)) for f in POLICY_FIELDS]
    pairs.append(("retry.budget", a.retry.budget, b.retry.budget))
    for name, old, new in pairs:
        if old == new:
            continue
        if hasattr(old, "model_dump") and hasattr(new, "model_dump"):
            o, n = old.model_dump(), new.model_dump()
            out += [f"{name}.{k}: {o[k]!r} -> {n[k]!r}" for k in o if o[k] != n.get(k)]
        elif name == "state_url":
            out.append("state_url differs")  # never echo it: it may hold a password
        else:
            out.append(f"{name}: {old!r} -> {new!r}")
    if clock_a is not clock_b:
        out.append(f"clock: {_describe_clock(clock_a)} -> {_describe_clock(clock_b)}")
    return out


def _describe_clock(clock: Clock) -> str:
    return f"{type(clock).__name__} at {id(clock):#x}"


class Registry:
    """A registry scope: target name → ``TargetState``, built on first use; thread-safe.

    Example::

        scope = Registry()                                  # apart from the process-wide scope
        model = ResilientChatModel(config, model="openai/gpt-4o", registry=scope)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TargetState] = {}
        _LIVE.add(self)

    def get(self, target: str, config: ResilientConfig, clock: Clock = SYSTEM_CLOCK) -> TargetState:
        """``target``'s state, built from ``config`` and ``clock`` on first use.

        Raises ``TargetPolicyConflictError`` if it exists under a different target policy or clock.
        """
        state = self._states.get(target)
        if state is None:
            with self._lock:
                state = self._states.get(target)
                if state is None:
                    state = build_target_state(target, config, clock)
                    self._states[target] = state
                    return state
        if state.config is not config or state.clock is not clock:
            differences = policy_differences(state.config, state.clock, config, clock)
            if differences:
                raise TargetPolicyConflictError(target, differences)
        return state

    def peek(self, target: str) -> TargetState | None:
        return self._states.get(target)

    def targets(self) -> list[str]:
        return list(self._states)

    def clear(self) -> None:
        """Forget every target; states already handed out are retired, so their users rebuild them."""
        with self._lock:
            for state in self._states.values():
                state.retired = True
            self._states.clear()

    def signals(self, target: str) -> TargetSignals | None:
        state = self._states.get(target)
        return state.signals() if state else None


_LIVE: weakref.WeakSet[Registry] = weakref.WeakSet()


def live_registries() -> list[Registry]:
    """Every registry still in use in this process (for gauges and the live view)."""
    return list(_LIVE)


DEFAULT_REGISTRY = Registry()


def signals_snapshot(target: str, *, registry: Registry | None = None):  # type: ignore[no-untyped-def]
    """Read the shared state of ``target`` (``"openai/gpt-4o"``), whoever used it; raises ``KeyError`` if unused."""
    from .signals import SignalsSnapshot

    reg = registry or DEFAULT_REGISTRY
    state = reg.peek(target)
    if state is None:
        known = ", ".join(sorted(reg.targets())) or "none yet"
        raise KeyError(f"no resilience state for target {target!r} in this process (known: {known})")
    return SignalsSnapshot.from_targets(target, {target: state.signals()}, time.time())


def reset_registry() -> None:
    """Forget all shared per-target state (for tests and notebooks); every live user starts afresh."""
    DEFAULT_REGISTRY.clear()
