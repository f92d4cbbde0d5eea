"""A point-in-time read of a target's resilience state, for dashboards, routing and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TargetSignals:
    """One target's state. ``rate_limit`` is the rate the limiter paces at now (req/s, ``None``: no limiter),
    ``rate_source`` where it comes from (``"configured"``, ``"headers"``, ``"429-feedback"``, ``"unlearned"``),
    ``spacing_margin`` how much wider than that rate it spaces requests after early 429s (0.02: 2 %),
    ``paused_for`` the seconds left of a provider's pause on the target."""

    target: str
    circuit_state: str
    current_inflight: int
    max_inflight: int | None
    rate_remaining: float | None
    rate_waiting: int
    inflight_waiting: int
    consecutive_failures: int
    cooldown_remaining: float
    opened_total: int
    rejected_total: int
    state_backend: str = "local"
    rate_limit: float | None = None
    rate_source: str | None = None
    spacing_margin: float = 0.0
    paused_for: float = 0.0


@dataclass(frozen=True, slots=True)
class SignalsSnapshot:
    """The primary target's headline signals plus an entry per target.

    ``circuit_state`` (``"closed"``/``"open"``/``"half_open"``), ``current_inflight``, ``rate_remaining``
    (tokens free now; ``None`` when no rate limit), ``max_inflight``, ``consecutive_failures``,
    ``cooldown_remaining`` (seconds), ``targets`` (per-target ``TargetSignals``), ``timestamp`` (wall clock).
    """

    target: str
    circuit_state: str
    current_inflight: int
    rate_remaining: float | None
    max_inflight: int | None
    consecutive_failures: int
    cooldown_remaining: float
    timestamp: float
    targets: dict[str, TargetSignals] = field(default_factory=dict)
    state_backend: str = "local"

    @classmethod
    def from_targets(cls, primary: str, targets: dict[str, TargetSignals], timestamp: float) -> SignalsSnapshot:
        head = targets[primary]
        return cls(
            target=primary,
            circuit_state=head.circuit_state,
            current_inflight=head.current_inflight,
            rate_remaining=head.rate_remaining,
            max_inflight=head.max_inflight,
            consecutive_failures=head.consecutive_failures,
            cooldown_remaining=head.cooldown_remaining,
            timestamp=timestamp,
            targets=targets,
            state_backend=head.state_backend,
        )

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
