"""Per-target state: one breaker, limiter, in-flight limit and retry budget per target (provider/model).

Every user of the same target in a process shares its state through the default registry, so a
``ResilientChatModel``, a LiteLLM callback and ``resilient_acompletion`` naming ``"openai/gpt-4o"`` see one
breaker. The first user's configuration builds a target's state; later users with different settings get the
existing state and a warning once.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass

from .clock import SYSTEM_CLOCK, Clock
from .config import ResilientConfig
from .policies.backpressure import Backpressure
from .policies.circuit_breaker import CircuitBreaker
from .policies.rate_limiter import RateLimiter
from .policies.retry import RetryBudget
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
    uses_store: bool = False
    """Limiter or breaker talk to a state store (``state_url``): async paths must await it, never call it."""

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
        )


def build_target_state(target: str, config: ResilientConfig, clock: Clock) -> TargetState:
    rl, bp = config.rate_limiter, config.backpressure
    limiter: RateLimiter | None = None
    backend = "local"
    if rl.requests_per_second is not None:
        if config.state_url:
            from .state import build_shared_limiter

            limiter, backend = build_shared_limiter(target, config, clock)
        else:
            limiter = RateLimiter(
                rl.requests_per_second, rl.effective_burst, max_wait=rl.max_wait, clock=clock, name=target
            )
    backpressure = (
        Backpressure(bp.max_inflight, max_wait=bp.max_wait, max_queue=bp.max_queue, clock=clock, name=target)
        if bp.max_inflight is not None
        else None
    )
    breaker = _build_breaker(target, config, clock)
    return TargetState(
        target=target,
        config=config,
        breaker=breaker,
        limiter=limiter,
        backpressure=backpressure,
        budget=RetryBudget(config.retry.budget, clock) if config.retry.budget is not None else None,
        state_backend=backend,
        uses_store=bool(config.state_url) and (limiter is not None or hasattr(breaker, "arefresh")),
    )


def _build_breaker(target: str, config: ResilientConfig, clock: Clock) -> CircuitBreaker:
    if config.share_breaker_state and config.state_url:
        from .state import build_breaker  # only then: keeps the Redis code off the default path

        return build_breaker(target, config, clock)
    return CircuitBreaker.from_config(config.circuit_breaker, clock=clock, name=target)


class Registry:
    """Target name → ``TargetState``; thread-safe, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TargetState] = {}
        self._warned: set[str] = set()

    def get(self, target: str, config: ResilientConfig, clock: Clock = SYSTEM_CLOCK) -> TargetState:
        state = self._states.get(target)
        if state is None:
            with self._lock:
                state = self._states.get(target)
                if state is None:
                    state = build_target_state(target, config, clock)
                    self._states[target] = state
                    return state
        if state.config is not config and target not in self._warned and _policies_differ(state.config, config):
            self._warned.add(target)
            warnings.warn(
                f"target {target!r} already has resilience state built from another configuration; sharing it "
                "(pass share_state=False or a separate Registry to keep them apart)",
                stacklevel=3,
            )
        return state

    def peek(self, target: str) -> TargetState | None:
        return self._states.get(target)

    def targets(self) -> list[str]:
        return list(self._states)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._warned.clear()

    def signals(self, target: str) -> TargetSignals | None:
        state = self._states.get(target)
        return state.signals() if state else None


def _policies_differ(a: ResilientConfig, b: ResilientConfig) -> bool:
    fields = ("rate_limiter", "circuit_breaker", "backpressure", "state_url")
    return any(getattr(a, f) != getattr(b, f) for f in fields)


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
    """Forget all shared per-target state (for tests and notebooks)."""
    DEFAULT_REGISTRY.clear()
