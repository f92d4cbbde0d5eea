"""Token limits: a call reserves its estimated tokens before it is sent and is reconciled with its usage after.

Up to three buckets per target, one per configured limit: ``tokens`` (input + output, OpenAI's TPM), ``input_tokens``
and ``output_tokens`` (Anthropic's ITPM/OTPM). Each refills at its per-minute limit / 60 and holds
``token_burst`` tokens (default: one second of the limit); a call estimated above a bucket reserves the whole
bucket. The estimate is made by the entry points (``token_estimate.estimate_cost``).

After the call (``reconcile``), with the usage the provider reported: ``input_tokens`` and ``output_tokens`` are
set to it (Anthropic adjusts OTPM to the output used); ``tokens`` is charged the larger of reservation and usage
(OpenAI and Azure count ``max_tokens`` when the request arrives). A call that fails, is refused later or is
cancelled gets its whole reservation back. A charge beyond what a bucket holds empties it, never below zero.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, NamedTuple

from .rate_limiter import RateLimiter

logger = logging.getLogger("langchain_ailib_resilience.pacing")

TokenDimension = Literal["tokens", "input_tokens", "output_tokens"]
TOKEN_DIMENSIONS: tuple[TokenDimension, ...] = ("tokens", "input_tokens", "output_tokens")


class TokenCost(NamedTuple):
    """A call's tokens: estimated before it is sent, or as the provider reported them."""

    input_tokens: float
    output_tokens: float

    def amount(self, dimension: TokenDimension) -> float:
        if dimension == "tokens":
            return self.input_tokens + self.output_tokens
        return self.input_tokens if dimension == "input_tokens" else self.output_tokens


# --- the buckets --------------------------------------------------------------------------------------------


class Reservation(NamedTuple):
    """What a call holds: ``(dimension, tokens)`` per bucket it took from."""

    parts: tuple[tuple[TokenDimension, float], ...]


NOTHING = Reservation(())


class TokenLimits:
    """A target's token buckets (``RateLimiter``s, or ``SharedRateLimiter``s through a store)."""

    def __init__(self, buckets: Mapping[TokenDimension, RateLimiter]) -> None:
        self.buckets = dict(buckets)

    def _parts(self, cost: TokenCost) -> list[tuple[TokenDimension, float]]:
        parts = []
        for dimension, bucket in self.buckets.items():
            amount = min(cost.amount(dimension), float(bucket.burst))
            if amount > 0:
                parts.append((dimension, amount))
        return parts

    def try_acquire(self, cost: TokenCost) -> Reservation | None:
        """Take every bucket's share now, or nothing (``None``)."""
        taken: list[tuple[TokenDimension, float]] = []
        for dimension, amount in self._parts(cost):
            if not self.buckets[dimension].try_acquire(amount):
                self.refund(Reservation(tuple(taken)))
                return None
            taken.append((dimension, amount))
        return Reservation(tuple(taken))

    def acquire(self, cost: TokenCost, timeout: float | None) -> Reservation:
        """Wait for every bucket's share (``RateLimitExceededError`` past ``timeout``; nothing kept then)."""
        taken: list[tuple[TokenDimension, float]] = []
        try:
            for dimension, amount in self._parts(cost):
                self.buckets[dimension].acquire_or_raise(tokens=amount, timeout=timeout)
                taken.append((dimension, amount))
        except BaseException:
            self.refund(Reservation(tuple(taken)))
            raise
        return Reservation(tuple(taken))

    async def aacquire(self, cost: TokenCost, timeout: float | None) -> Reservation:
        """Async ``acquire``; a cancelled caller keeps nothing."""
        taken: list[tuple[TokenDimension, float]] = []
        try:
            for dimension, amount in self._parts(cost):
                await self.buckets[dimension].aacquire_or_raise(tokens=amount, timeout=timeout)
                taken.append((dimension, amount))
        except BaseException:
            self.refund(Reservation(tuple(taken)))
            raise
        return Reservation(tuple(taken))

    def refund(self, reservation: Reservation) -> None:
        for dimension, amount in reservation.parts:
            self.buckets[dimension].refund(amount)

    def reconcile(self, reservation: Reservation, usage: TokenCost) -> None:
        """Settle a reservation with the usage the provider reported (rules in the module docstring)."""
        for dimension, reserved in reservation.parts:
            used = usage.amount(dimension)
            delta = max(used, reserved) - reserved if dimension == "tokens" else used - reserved
            if delta < 0:
                self.buckets[dimension].refund(-delta)
            elif delta > 0:
                self.buckets[dimension].debit(delta)

    def remaining(self) -> dict[str, float]:
        return {dimension: bucket.remaining for dimension, bucket in self.buckets.items()}
