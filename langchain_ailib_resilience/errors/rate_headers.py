"""The limits a provider states in its response headers: what it allows, what is left, and when it refills.

Three families are read, on success and error responses alike:

- OpenAI (and Groq, and OpenAI-compatible servers): ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``,
  limits per minute, resets as Go durations (``1s``, ``6m0s``, ``20ms``);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``,
  limits per minute (token counts rounded to thousands), resets as RFC 3339 times;
- Azure OpenAI: ``x-ratelimit-remaining-{requests,tokens}`` without a limit (Azure enforces over 1 s and 10 s
  windows and answers 429s with ``retry-after-ms``); ``-1`` means "not reported" and is ignored, ``0`` means
  exhausted.

A value that does not parse is ignored with a debug log; nothing here raises.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Literal

from .retry_after import HeadersLike, _parse_reset, normalize_headers, parse_retry_after

__all__ = ["DIMENSIONS", "Dimension", "LimitReading", "RateLimitHeaders", "parse_rate_limit_headers"]

logger = logging.getLogger("langchain_ailib_resilience.pacing")

Dimension = Literal["requests", "tokens", "input_tokens", "output_tokens"]
DIMENSIONS: tuple[Dimension, ...] = ("requests", "tokens", "input_tokens", "output_tokens")
Source = Literal["openai", "anthropic", "azure"]

_COUNT = re.compile(r"[+-]?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class LimitReading:
    """One limit as the provider stated it: ``limit`` per minute, ``remaining`` now, ``reset`` seconds from now
    until it refills (each ``None`` when not stated)."""

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What one response said about the provider's limits, and in which dialect."""

    source: Source
    requests: LimitReading | None = None
    tokens: LimitReading | None = None
    input_tokens: LimitReading | None = None
    output_tokens: LimitReading | None = None
    retry_after: float | None = None

    def reading(self, dimension: Dimension) -> LimitReading | None:
        value: LimitReading | None = getattr(self, dimension)
        return value


def _count(name: str, raw: str | None) -> float | None:
    if raw is None:
        return None
    text = raw.strip()
    if not _COUNT.fullmatch(text):
        logger.debug("ignoring malformed rate-limit header %s=%r", name, raw)
        return None
    value = float(text)
    if not math.isfinite(value) or value < 0:
        return None  # Azure's -1: not reported
    return value


def _reset(name: str, raw: str | None, now: float) -> float | None:
    if raw is None:
        return None
    seconds = _parse_reset(raw, now)
    if seconds is None:
        logger.debug("ignoring malformed rate-limit header %s=%r", name, raw)
    return seconds


def _reading(named: dict[str, str], limit: str, remaining: str, reset: str, now: float) -> LimitReading | None:
    reading = LimitReading(
        _count(limit, named.get(limit)), _count(remaining, named.get(remaining)), _reset(reset, named.get(reset), now)
    )
    if reading.limit is None and reading.remaining is None and reading.reset is None:
        return None
    return reading


def parse_rate_limit_headers(headers: HeadersLike | object, *, now: float | None = None) -> RateLimitHeaders | None:
    """The limits stated in ``headers`` (any form ``normalize_headers`` takes), or ``None`` if none are.

    ``now`` is the wall clock (``time.time()``) that RFC 3339 resets are measured from. Never raises.
    """
    try:
        named = normalize_headers(headers)
        if not named:
            return None
        wall = time.time() if now is None else now
        retry_after = parse_retry_after(
            {k: v for k, v in named.items() if k in ("retry-after", "retry-after-ms")}, now=wall
        )
        if any(name.startswith("anthropic-ratelimit-") for name in named):
            parts = {
                dimension: _reading(
                    named,
                    f"anthropic-ratelimit-{dimension.replace('_', '-')}-limit",
                    f"anthropic-ratelimit-{dimension.replace('_', '-')}-remaining",
                    f"anthropic-ratelimit-{dimension.replace('_', '-')}-reset",
                    wall,
                )
                for dimension in DIMENSIONS
            }
            return RateLimitHeaders("anthropic", retry_after=retry_after, **parts)
        if not any(name.startswith("x-ratelimit-") for name in named):
            return None
        source: Source = (
            "openai"
            if any(name.startswith(("x-ratelimit-limit-", "x-ratelimit-reset-")) for name in named)
            else "azure"
        )
        requests = _reading(
            named, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", wall
        )
        tokens = _reading(
            named, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", wall
        )
        if requests is None and tokens is None:
            return None
        return RateLimitHeaders(source, requests=requests, tokens=tokens, retry_after=retry_after)
    except Exception:  # pragma: no cover - defensive: headers come from anywhere
        logger.debug("could not read rate-limit headers", exc_info=True)
        return None
