"""Token limits: a call reserves its estimated tokens before it is sent and is reconciled with its usage after.

Up to three buckets per target, one per configured limit: ``tokens`` (input + output, OpenAI's TPM), ``input_tokens``
and ``output_tokens`` (Anthropic's ITPM/OTPM). Each refills at its per-minute limit / 60 and holds
``token_burst`` tokens (default: one second of the limit); a call estimated above a bucket reserves the whole
bucket. The estimate (``estimate_cost``):

- input: LiteLLM's ``token_counter`` when LiteLLM is installed, else ``tiktoken`` (``cl100k_base``) if present,
  else one token per 4 characters;
- output: the call's ``max_tokens``/``max_completion_tokens``, else ``DEFAULT_OUTPUT_TOKENS``.

After the call (``reconcile``), with the usage the provider reported: ``input_tokens`` and ``output_tokens`` are
set to it (Anthropic adjusts OTPM to the output used); ``tokens`` is charged the larger of reservation and usage
(OpenAI and Azure count ``max_tokens`` when the request arrives). A call that fails, is refused later or is
cancelled gets its whole reservation back. A charge beyond what a bucket holds empties it, never below zero.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple

from .rate_limiter import RateLimiter

logger = logging.getLogger("langchain_ailib_resilience.pacing")

TokenDimension = Literal["tokens", "input_tokens", "output_tokens"]
TOKEN_DIMENSIONS: tuple[TokenDimension, ...] = ("tokens", "input_tokens", "output_tokens")
DEFAULT_OUTPUT_TOKENS = 256
"""The output a call is assumed to use when it sets no ``max_tokens``/``max_completion_tokens``."""
CHARS_PER_TOKEN = 4


class TokenCost(NamedTuple):
    """A call's tokens: estimated before it is sent, or as the provider reported them."""

    input_tokens: float
    output_tokens: float

    def amount(self, dimension: TokenDimension) -> float:
        if dimension == "tokens":
            return self.input_tokens + self.output_tokens
        return self.input_tokens if dimension == "input_tokens" else self.output_tokens


# --- the estimate -------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(part) for part in content)
    if isinstance(content, Mapping):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    return ""


def _as_messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as ``{"role", "content"}`` dicts: from dicts, LangChain messages, a prompt value or a string."""
    to_messages = getattr(messages, "to_messages", None)
    if callable(to_messages):
        messages = to_messages()
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, str]] = []
    for message in messages if isinstance(messages, Iterable) else ():
        if isinstance(message, Mapping):
            out.append({"role": str(message.get("role", "user")), "content": _text_of(message.get("content"))})
        elif isinstance(message, str):
            out.append({"role": "user", "content": message})
        else:
            role = getattr(message, "type", "user")
            out.append({"role": "assistant" if role == "ai" else str(role), "content": _text_of(message.content)})
    return out


@functools.lru_cache(maxsize=1)
def _tiktoken_encoding() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its encoding file cannot be had offline
        return None


def _litellm_counter() -> Callable[..., Any] | None:
    try:
        from litellm import token_counter
    except ImportError:
        return None
    return token_counter


def count_input_tokens(model: str | None, messages: Any) -> int:
    """The input tokens of ``messages`` for ``model`` (see the module docstring for how)."""
    chat = _as_messages(messages)
    counter = _litellm_counter()
    if counter is not None:
        try:
            return int(counter(model=model or "", messages=chat))
        except Exception:
            logger.debug("token_counter could not count for %r; estimating", model)
    text = "\n".join(m["content"] for m in chat)
    encoding = _tiktoken_encoding()
    if encoding is not None:
        return len(encoding.encode(text)) + 3 * len(chat)
    return math.ceil(len(text) / CHARS_PER_TOKEN) + 3 * len(chat)


def output_budget(params: Mapping[str, Any]) -> int:
    """``max_completion_tokens`` or ``max_tokens`` when set, else ``DEFAULT_OUTPUT_TOKENS``."""
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_OUTPUT_TOKENS


def estimate_cost(model: str | None, messages: Any, params: Mapping[str, Any]) -> TokenCost:
    return TokenCost(float(count_input_tokens(model, messages)), float(output_budget(params)))


def lazy_cost(model: str | None, messages: Any, params: Mapping[str, Any]) -> Callable[[], TokenCost]:
    """The estimate, made once and only if a target with token limits asks for it."""
    return functools.cache(lambda: estimate_cost(model, messages, params))


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
