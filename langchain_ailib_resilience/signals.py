"""A point-in-time read of a target's resilience state, for dashboards, routing and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TargetSignals:
    """One target's state."""

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
