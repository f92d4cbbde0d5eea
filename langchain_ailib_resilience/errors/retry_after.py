"""How long a provider asked us to wait, from wherever it said so.

Providers say it in many ways: ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), OpenAI's
``x-ratelimit-reset-*`` durations (``"6m0s"``), Anthropic's ``anthropic-ratelimit-*-reset`` RFC 3339 times,
Google's ``RetryInfo.retryDelay`` in the body, or only in the message text ("Please try again in 5.289s").
The result is plain seconds; callers cap it (a 3600 s header must not sleep an hour).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias

__all__ = ["HeadersLike", "headers_of", "normalize_headers", "parse_duration", "parse_retry_after"]

HeadersLike: TypeAlias = Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None
"""A dict, ``httpx.Headers``, an aiohttp multidict, or a list of ``(name, value)`` pairs."""

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|us|µs|ns|h|m|s))+")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_MESSAGE_HINT = re.compile(
    r"(?:try(?:ing)? again|retry(?:ing)?|wait)\s+(?:in|after|for)\s+(?:about\s+|approximately\s+|~\s*)?", re.I
)
_WORD_UNIT = re.compile(
    r"(\d+(?:\.\d+)?)\s*(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)(?![a-z])",
    re.I,
)
_BARE_NUMBER = re.compile(r"(\d+(?:\.\d+)?)(?![\w.%])")

# OpenAI / Groq send "x-ratelimit-reset-{requests,tokens}" with "x-ratelimit-remaining-*"; Anthropic sends
# "anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset" with "...-remaining".
_RESET_FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("x-ratelimit-reset-", "x-ratelimit-remaining-", ("requests", "tokens")),
    (
        "anthropic-ratelimit-",
        "anthropic-ratelimit-",
        ("requests", "tokens", "input-tokens", "output-tokens"),
    ),
)
_EPOCH_THRESHOLD = 1e9  # a "reset" number above this is a Unix timestamp, not a number of seconds


def _valid(seconds: float | None) -> float | None:
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return float(seconds)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return None


def normalize_headers(headers: HeadersLike | object) -> dict[str, str]:
    """Headers as a dict with lower-case names; the first value of a repeated header wins. Never raises."""
    result: dict[str, str] = {}
    if headers is None:
        return result
    try:
        pairs: Iterable[Any]
        multi_items = getattr(headers, "multi_items", None)  # httpx.Headers keeps repeats apart here
        if callable(multi_items):
            pairs = multi_items()
        elif callable(items := getattr(headers, "items", None)):
            pairs = items()
        elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
            pairs = headers
        else:
            return result
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                continue
            name, value = _text(pair[0]), pair[1]
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            text = _text(value)
            if name is None or text is None:
                continue
            result.setdefault(name.strip().lower(), text.strip())
    except Exception:
        return result
    return result


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``"1h2m3.5s"``, ``"6m0s"``, ``"20ms"``) or a plain number."""
    value = text.strip()
    if not value:
        return None
    if _GO_DURATION_FULL.fullmatch(value):
        return _valid(sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_DURATION.findall(value)))
    if _NUMBER.fullmatch(value):
        return _valid(float(value))
    return None


def _parse_timestamp(text: str, now: float) -> float | None:
    """Seconds until an RFC 3339 / ISO 8601 or HTTP date; a moment already past means "now" (0.0)."""
    value = text.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _parse_retry_after_header(value: str, now: float) -> float | None:
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return _valid(float(value))
    return _parse_timestamp(value, now)


def _parse_reset(value: str, now: float) -> float | None:
    """A reset header: a duration, a number of seconds, a Unix timestamp, or a date."""
    value = value.strip()
    if _NUMBER.fullmatch(value):
        number = float(value)
        if number > _EPOCH_THRESHOLD:
            return _valid(max(0.0, number - now)) if math.isfinite(number) else None
        return _valid(number)
    duration = parse_duration(value)
    if duration is not None:
        return duration
    return _parse_timestamp(value, now)


def _remaining_is_zero(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value) <= 0
    except ValueError:
        return False


def _from_reset_headers(headers: Mapping[str, str], now: float) -> float | None:
    """The wait until the exhausted limit resets; if it is unknown which one is exhausted, the longest."""
    exhausted: list[float] = []
    every: list[float] = []
    for reset_prefix, remaining_prefix, dimensions in _RESET_FAMILIES:
        for dimension in dimensions:
            if reset_prefix == "anthropic-ratelimit-":
                reset_name = f"{reset_prefix}{dimension}-reset"
                remaining_name = f"{remaining_prefix}{dimension}-remaining"
            else:
                reset_name = f"{reset_prefix}{dimension}"
                remaining_name = f"{remaining_prefix}{dimension}"
            raw = headers.get(reset_name)
            if raw is None:
                continue
            seconds = _parse_reset(raw, now)
            if seconds is None:
                continue
            every.append(seconds)
            if _remaining_is_zero(headers.get(remaining_name)):
                exhausted.append(seconds)
    if exhausted:
        return max(exhausted)
    if every:
        return max(every)
    for name in ("x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"):
        raw = headers.get(name)
        if raw is not None:
            seconds = _parse_reset(raw, now)
            if seconds is not None:
                return seconds
    return None


def _delay_value(value: Any) -> float | None:
    """A ``retryDelay`` as Google sends it: ``"5s"``, or protobuf JSON ``{"seconds": 5, "nanos": 0}``."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _valid(float(value))
    if isinstance(value, Mapping):
        try:
            return _valid(float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9)
        except (TypeError, ValueError):
            return None
    seconds = getattr(value, "seconds", None)  # a protobuf Duration object
    if isinstance(seconds, int | float):
        nanos = getattr(value, "nanos", 0)
        return _valid(float(seconds) + (float(nanos) / 1e9 if isinstance(nanos, int | float) else 0.0))
    return None


def _from_body(body: Any, depth: int = 0) -> float | None:
    """Google ``RetryInfo.retryDelay`` (or a ``retry_after`` field) anywhere in a JSON body."""
    if depth > 6 or body is None:
        return None
    if isinstance(body, bytes | bytearray | str):
        text = _text(body) or ""
        if "{" not in text and "[" not in text:
            return None
        try:
            return _from_body(json.loads(text), depth + 1)
        except (ValueError, RecursionError):
            return None
    if isinstance(body, Mapping):
        for key in ("retryDelay", "retry_delay"):
            if key in body:
                found = _delay_value(body[key])
                if found is not None:
                    return found
        for key in ("retry_after", "retryAfter"):
            value = body.get(key)
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                found = _valid(float(value)) if _NUMBER.fullmatch(str(value).strip()) else None
                if found is not None:
                    return found
        for value in body.values():
            if isinstance(value, Mapping | list | tuple):
                found = _from_body(value, depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(body, list | tuple):
        for item in body:
            found = _from_body(item, depth + 1)
            if found is not None:
                return found
        return None
    delay = getattr(body, "retry_delay", None)  # a google.rpc.RetryInfo message object
    return _delay_value(delay) if delay is not None else None


def _unit_scale(unit: str) -> float:
    unit = unit.lower()
    if unit.startswith(("ms", "milli")):
        return 1e-3
    if unit.startswith("h"):
        return 3600.0
    if unit.startswith("m"):
        return 60.0
    return 1.0


def _from_message(message: str) -> float | None:
    """A hint in prose: "try again in 5.289s", "retry after 20 seconds", "Please retry in 1m2s"."""
    for hint in _MESSAGE_HINT.finditer(message):
        rest = message[hint.end() : hint.end() + 40]
        go = _GO_DURATION_FULL.match(rest)
        if go and not rest[go.end() : go.end() + 1].isalpha():
            return parse_duration(go.group(0))
        word = _WORD_UNIT.match(rest)
        if word:
            return _valid(float(word.group(1)) * _unit_scale(word.group(2)))
        bare = _BARE_NUMBER.match(rest)
        if bare:
            return _valid(float(bare.group(1)))
    return None


def parse_retry_after(
    headers: HeadersLike | object,
    *,
    body: Any = None,
    message: str | None = None,
    now: float | None = None,
) -> float | None:
    """Seconds the provider asked us to wait, or ``None`` if it did not say (or said something unusable).

    Order: ``retry-after-ms``, ``retry-after``, the rate-limit reset headers (OpenAI, Groq, Anthropic,
    generic), ``RetryInfo`` in the body, then a hint in the message. Negative, NaN and unparseable values are
    ignored; a date or timestamp already past gives 0.0. ``now`` is the wall clock (``time.time()``) for
    dates and timestamps. Never raises.
    """
    try:
        clock = time.time() if now is None else now
        named = normalize_headers(headers)
        raw_ms = named.get("retry-after-ms")
        if raw_ms is not None and _NUMBER.fullmatch(raw_ms.strip()):
            found = _valid(float(raw_ms) / 1000.0)
            if found is not None:
                return found
        raw = named.get("retry-after")
        if raw is not None:
            found = _parse_retry_after_header(raw, clock)
            if found is not None:
                return found
        found = _from_reset_headers(named, clock)
        if found is not None:
            return found
        found = _from_body(body)
        if found is not None:
            return found
        if message:
            return _from_message(message)
    except Exception:
        return None
    return None


def _safe_attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def headers_of(exc: BaseException) -> dict[str, str]:
    """Response headers wherever SDKs keep them, merged with lower-case names (empty if none). Never raises.

    Looked up in order, an earlier source winning a repeated name: ``exc.headers`` (LiteLLM's proxy headers,
    aiohttp), ``exc.litellm_response_headers`` (LiteLLM: on a vendor 429 ``e.headers`` is ``None``),
    ``exc.response.headers`` (httpx, OpenAI and Anthropic SDKs), ``exc.response_headers``, and botocore's
    ``exc.response["ResponseMetadata"]["HTTPHeaders"]``.
    """
    merged: dict[str, str] = {}
    sources: list[Any] = [
        _safe_attr(exc, "headers"),
        _safe_attr(exc, "litellm_response_headers"),
    ]
    response = _safe_attr(exc, "response")
    if isinstance(response, Mapping):
        metadata = response.get("ResponseMetadata")
        if isinstance(metadata, Mapping):
            sources.append(metadata.get("HTTPHeaders"))
    elif response is not None:
        sources.append(_safe_attr(response, "headers"))
    sources.append(_safe_attr(exc, "response_headers"))
    for source in sources:
        if source is None:
            continue
        for name, value in normalize_headers(source).items():
            merged.setdefault(name, value)
    return merged
