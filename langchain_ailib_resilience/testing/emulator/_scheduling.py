"""The emulator's own limits, on its clock: request and token buckets per model, and a random fault rate.

The buckets step ``policies._bucket.apply_bucket``, the package's one token-bucket arithmetic, so the provider
the tests run against counts exactly as the limiter that paces them does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...policies._bucket import apply_bucket
from ._behaviours import Behaviour

Dimension = Literal["requests", "tokens", "input_tokens", "output_tokens"]
HeaderForm = Literal["auto", "openai", "anthropic", "azure", "retry-after", "none"]
"""Which rate-limit headers a limited model sends: ``"auto"`` is the route's own (OpenAI's on the OpenAI route,
Azure's on an Azure deployment route, Anthropic's on ``/v1/messages``, none on Gemini's, which says it in the
body); ``"retry-after"`` only ``retry-after``/``retry-after-ms`` on a 429; ``"none"``: a bare 429."""
HEADER_FORMS: tuple[HeaderForm, ...] = ("auto", "openai", "anthropic", "azure", "retry-after", "none")

DEFAULT_OUTPUT_TOKENS = 16
"""Output tokens charged at arrival to a request that states no ``max_tokens`` (the emulator's answers are short)."""
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text


@dataclass(slots=True)
class Bucket:
    """A token bucket: ``rate`` a second, at most ``burst`` saved up; starts full."""

    rate: float
    burst: float
    level: float | None = None
    stamp: float = 0.0

    def take(self, now: float, amount: float = 1.0) -> float | None:
        """Take ``amount`` (``None``), or take nothing and return the seconds until it is there."""
        wait, self.level, self.stamp = apply_bucket(self.level, self.stamp, now, amount, self.rate, self.burst)
        return wait if wait > 0 else None

    def give(self, now: float, amount: float) -> None:
        _, self.level, self.stamp = apply_bucket(self.level, self.stamp, now, -amount, self.rate, self.burst)

    def remaining(self, now: float) -> float:
        _, self.level, self.stamp = apply_bucket(self.level, self.stamp, now, 0.0, self.rate, self.burst)
        return self.level

    def until_full(self, now: float) -> float:
        return max(0.0, (self.burst - self.remaining(now)) / self.rate)


@dataclass(frozen=True, slots=True)
class Reading:
    """One dimension's state as a provider states it: the limit per minute, what is left, seconds to full."""

    per_minute: float
    remaining: float
    reset: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the dimension short of tokens, its limit per minute, the wait until it passes."""

    dimension: Dimension
    per_minute: float
    wait: float


@dataclass(frozen=True, slots=True)
class Cost:
    """What a request counts against the limits at arrival: the prompt (estimated) and ``max_tokens``."""

    input_tokens: int
    output_tokens: int

    def of(self, dimension: Dimension) -> int:
        if dimension == "requests":
            return 1
        if dimension == "input_tokens":
            return self.input_tokens
        if dimension == "output_tokens":
            return self.output_tokens
        return self.input_tokens + self.output_tokens


def _text_length(value: Any, depth: int = 0) -> int:
    if depth > 20:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_text_length(item, depth + 1) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_text_length(item, depth + 1) for item in value)
    return 0


def request_cost(body: Mapping[str, Any]) -> Cost:
    """The prompt as one token per ``CHARS_PER_TOKEN`` characters of its text (every string in its messages,
    roles included, its system prompt and tools), and the output as the request's
    ``max_tokens`` (``max_completion_tokens``, Gemini's ``maxOutputTokens``), counted at arrival as Azure does."""
    chars = sum(_text_length(body.get(key)) for key in ("messages", "system", "contents", "tools"))
    generation = body.get("generationConfig")
    stated = (
        body.get("max_tokens")
        or body.get("max_completion_tokens")
        or (generation.get("maxOutputTokens") if isinstance(generation, Mapping) else None)
    )
    output = stated if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0 else None
    return Cost(math.ceil(chars / CHARS_PER_TOKEN), DEFAULT_OUTPUT_TOKENS if output is None else output)


@dataclass(slots=True)
class Limits:
    """A model's (or the account's) limits: a bucket per dimension, and the headers that state them."""

    buckets: dict[Dimension, Bucket]
    headers: HeaderForm = "auto"

    def _charge(self, dimension: Dimension, bucket: Bucket, cost: Cost) -> float:
        # A request larger than the whole bucket waits for a full bucket and empties it, rather than never passing.
        return float(min(cost.of(dimension), bucket.burst))

    def admit(self, now: float, cost: Cost) -> Refusal | None:
        """Charge ``cost`` to every bucket, or charge nothing and say which dimension refused (the longest wait)."""
        taken: list[tuple[Bucket, float]] = []
        refusal: Refusal | None = None
        for dimension, bucket in self.buckets.items():
            amount = self._charge(dimension, bucket, cost)
            if amount <= 0:
                continue
            wait = bucket.take(now, amount)
            if wait is None:
                taken.append((bucket, amount))
            elif refusal is None or wait > refusal.wait:
                refusal = Refusal(dimension, bucket.rate * 60, wait)
        if refusal is not None:
            for bucket, amount in taken:
                bucket.give(now, amount)
        return refusal

    def refund(self, now: float, cost: Cost) -> None:
        for dimension, bucket in self.buckets.items():
            bucket.give(now, self._charge(dimension, bucket, cost))

    def readings(self, now: float) -> dict[Dimension, Reading]:
        return {
            dimension: Reading(bucket.rate * 60, bucket.remaining(now), bucket.until_full(now))
            for dimension, bucket in self.buckets.items()
        }

    @property
    def requests_per_minute(self) -> int | None:
        bucket = self.buckets.get("requests")
        return None if bucket is None else max(1, round(bucket.rate * 60))


def build_limits(
    rps: float | None,
    burst: int,
    per_minute: Mapping[Dimension, float | None],
    token_burst: float | None,
    headers: HeaderForm,
) -> Limits:
    """Validate and build; a token bucket holds ``token_burst`` or ten seconds of its limit (Azure's window)."""
    if headers not in HEADER_FORMS:
        raise ValueError(f"headers must be one of {HEADER_FORMS}, got {headers!r}")
    if burst < 1:
        raise ValueError("burst must be at least 1")
    if token_burst is not None and token_burst < 1:
        raise ValueError("token_burst must be at least 1")
    buckets: dict[Dimension, Bucket] = {}
    if rps is not None:
        if not rps > 0:
            raise ValueError("rps must be positive")
        buckets["requests"] = Bucket(float(rps), float(burst))
    for dimension, limit in per_minute.items():
        if limit is None:
            continue
        if not limit > 0:
            raise ValueError(f"{dimension}_per_minute must be positive")
        buckets[dimension] = Bucket(limit / 60.0, float(token_burst) if token_burst else limit / 6.0)
    if not buckets:
        raise ValueError("rate_limit needs rps or a tokens-per-minute limit")
    return Limits(buckets, headers)


@dataclass(slots=True)
class Chaos:
    rate: float
    faults: tuple[Behaviour, ...]
    rng: random.Random = field(default_factory=random.Random)
