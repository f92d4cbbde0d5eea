"""Rate-limit headers as each provider writes them, from the emulator's bucket readings.

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, limits per minute, resets (time until the
  bucket is full again) as Go durations: ``20ms``, ``1.5s``, ``6m0s``.
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``,
  token counts remaining rounded to the nearest thousand, resets as RFC 3339 times (whole seconds, rounded up).
- Azure OpenAI: ``x-ratelimit-remaining-{requests,tokens}`` only; a 429 says ``retry-after-ms`` too.

Every wait is rounded up, never down: a client that trusts the header to the millisecond is never early.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from ._scheduling import Dimension, HeaderForm, Reading
from ._wire import ProviderFormat, format_seconds

_OPENAI_DIMENSIONS: tuple[Dimension, ...] = ("requests", "tokens")  # no input/output split in these forms


def go_duration(seconds: float) -> str:
    """OpenAI's reset format, rounded up to the millisecond: ``20ms``, ``1.5s``, ``6m0s``."""
    millis = math.ceil(max(0.0, seconds) * 1000 - 1e-6)
    if millis < 1000:
        return f"{millis}ms"
    if millis < 60_000:
        return f"{format_seconds(millis / 1000)}s"
    minutes, rest = divmod(millis, 60_000)
    return f"{minutes}m{format_seconds(rest / 1000)}s"


def rfc3339_after(seconds: float, wall: float) -> str:
    """The moment ``seconds`` after ``wall`` (a ``time.time()``), rounded up to the whole second."""
    moment = datetime.fromtimestamp(math.ceil(wall + max(0.0, seconds)), UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def resolve(form: HeaderForm, provider: ProviderFormat, azure: bool) -> HeaderForm:
    if form != "auto":
        return form
    if provider == "anthropic":
        return "anthropic"
    if provider == "gemini":
        return "none"  # Gemini states no limits in headers; its 429 carries RetryInfo in the body
    return "azure" if azure else "openai"


def _count(value: float) -> str:
    return str(max(0, math.floor(value + 1e-9)))


def limit_headers(form: HeaderForm, readings: Mapping[Dimension, Reading], wall: float) -> dict[str, str]:
    """The headers stating ``readings`` in ``form`` (a resolved form: not ``"auto"``)."""
    headers: dict[str, str] = {}
    if form == "openai":
        for dimension in _OPENAI_DIMENSIONS:
            reading = readings.get(dimension)
            if reading is None:
                continue
            headers[f"x-ratelimit-limit-{dimension}"] = str(round(reading.per_minute))
            headers[f"x-ratelimit-remaining-{dimension}"] = _count(reading.remaining)
            headers[f"x-ratelimit-reset-{dimension}"] = go_duration(reading.reset)
    elif form == "anthropic":
        for dimension, reading in readings.items():
            name = f"anthropic-ratelimit-{dimension.replace('_', '-')}"
            remaining = math.floor(reading.remaining + 1e-9)
            if dimension != "requests":
                remaining = round(remaining, -3)
            headers[f"{name}-limit"] = str(round(reading.per_minute))
            headers[f"{name}-remaining"] = str(max(0, remaining))
            headers[f"{name}-reset"] = rfc3339_after(reading.reset, wall)
    elif form == "azure":
        for dimension in _OPENAI_DIMENSIONS:
            reading = readings.get(dimension)
            if reading is not None:
                headers[f"x-ratelimit-remaining-{dimension}"] = _count(reading.remaining)
    return headers


def retry_headers(form: HeaderForm, wait: float) -> dict[str, str]:
    """What a 429 says about when to come back, in ``form`` (``wait`` is already rounded up to the ms)."""
    if form in ("none", "auto"):
        return {}
    headers = {"retry-after": format_seconds(wait)}
    if form != "anthropic":
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000 - 1e-6)))
    return headers
