"""The emulator's own limits, on its clock: a token bucket per model and a random fault rate."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._behaviours import Behaviour


@dataclass(slots=True)
class Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take a token, or return the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class Chaos:
    rate: float
    faults: tuple[Behaviour, ...]
    rng: random.Random
