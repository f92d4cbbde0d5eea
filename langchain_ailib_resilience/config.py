"""Validated, immutable configuration (pydantic v2), from arguments or ``AI_LIB_*`` environment variables.

Precedence everywhere: explicit argument > environment variable > built-in default. Bad values fail at
construction with a message naming the field or the variable.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from .errors.codes import StandardErrorCode
from .errors.redact import redact_url

JitterMode = Literal["none", "full", "equal", "decorrelated"]
LongRetryAfter = Literal["fallback", "cap"]
BreakerMode = Literal["consecutive", "failure_rate"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field or environment variable."""


# The longest wait the platform can sleep (``time.sleep``/``Event.wait`` overflow past it, about 292 years):
# longer durations are refused here, and the system clock clamps computed waits to it.
LONGEST_WAIT = threading.TIMEOUT_MAX


# Defaults are passed as ``Field(default=...)``: type checkers without the pydantic plugin read only that keyword
# (``dataclass_transform``), and would otherwise call every field required (tests/typing).
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)


class RetryBudgetConfig(_Frozen):
    """Caps retries to a share of requests over a window, so retries cannot amplify an outage (Envoy, Finagle).

    Over any ``window_seconds``, retries ≤ ``min_retries_per_second`` × window + ``ratio`` × requests.
    """

    ratio: float = Field(default=0.2, ge=0.0, le=10.0, description="retries allowed per request")
    min_retries_per_second: float = Field(default=1.0, ge=0.0, description="floor, so low traffic can still retry")
    window_seconds: float = Field(default=10.0, gt=0.0)


class RetryConfig(_Frozen):
    """Retry with exponential backoff and jitter, honouring Retry-After up to a cap.

    Every delay lies in [``initial_delay``, ``max_delay``] (the AI-Protocol's res-001/res-004 window);
    ``jitter`` spreads retries: ``decorrelated`` (default, AWS formula), ``full``, ``equal`` or ``none``.
    A provider's Retry-After above ``max_retry_after`` is not slept: with ``on_long_retry_after="fallback"``
    the call gives up on that target (falling back where it can); ``"cap"`` sleeps ``max_retry_after``.
    ``retry_on`` (AI-Protocol's ``retry_on_error_code``; codes or names) narrows the retried codes; it never
    widens them past the retryable ones (a spent quota is never retried). ``None``: every retryable code.
    """

    max_retries: StrictInt = Field(default=3, ge=0, le=100)
    initial_delay: float = Field(default=1.0, ge=0.0, le=LONGEST_WAIT)
    max_delay: float = Field(default=30.0, gt=0.0, le=LONGEST_WAIT)
    backoff_multiplier: float = Field(default=2.0, ge=1.0)
    jitter: JitterMode = "decorrelated"
    respect_retry_after: bool = True
    max_retry_after: float = Field(default=60.0, ge=0.0, le=LONGEST_WAIT)
    on_long_retry_after: LongRetryAfter = "fallback"
    budget: RetryBudgetConfig | None = Field(default_factory=RetryBudgetConfig)
    retry_on: frozenset[StandardErrorCode] | None = None

    @field_validator("retry_on", mode="before")
    @classmethod
    def _codes_or_names(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value  # a bare string is refused by the field type, not split into letters
        return frozenset(StandardErrorCode.parse(item) if isinstance(item, str) else item for item in value)

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        if self.max_delay < self.initial_delay:
            raise ValueError(f"max_delay ({self.max_delay}) must be >= initial_delay ({self.initial_delay})")
        return self


class RateLimiterConfig(_Frozen):
    """A token bucket per target: ``requests_per_second`` refill, ``burst_size`` capacity.

    ``requests_per_second=None`` (the default) means no local limit. ``max_wait`` bounds how long a caller
    queues for a token: a longer wait is rejected at once with ``RateLimitExceededError`` (retry_after set),
    which sends the call to the next target.

    ``pause_on_retry_after`` (on by default): a 429/503 carrying a Retry-After (any form the library parses)
    pauses the whole target, every caller (and, with ``state_url``, every process), until then, whether or not
    a rate is configured.

    ``adaptive=True``: the rate is learned from the provider's rate-limit headers (OpenAI ``x-ratelimit-*``,
    Anthropic ``anthropic-ratelimit-*``) or, where none state a limit, from its 429s (AIMD); a configured
    ``requests_per_second`` is then the ceiling, and with none nothing needs configuring.

    ``tokens_per_minute`` (input + output), ``input_tokens_per_minute``, ``output_tokens_per_minute``: token
    limits. A call reserves its estimated tokens before it is sent and is reconciled with the usage it
    reports (``policies/tokens.py``); each bucket holds ``token_burst`` tokens (default: one second's worth).
    """

    requests_per_second: float | None = Field(default=None, gt=0.0)
    burst_size: StrictInt | None = Field(default=None, ge=1)
    max_wait: float | None = Field(default=30.0, ge=0.0, le=LONGEST_WAIT)
    pause_on_retry_after: bool = True
    adaptive: bool = False
    tokens_per_minute: float | None = Field(default=None, gt=0.0)
    input_tokens_per_minute: float | None = Field(default=None, gt=0.0)
    output_tokens_per_minute: float | None = Field(default=None, gt=0.0)
    token_burst: StrictInt | None = Field(default=None, ge=1)

    @property
    def token_limits(self) -> dict[str, float]:
        """The configured token limits per minute, by dimension (``tokens``, ``input_tokens``, ``output_tokens``)."""
        limits = {
            "tokens": self.tokens_per_minute,
            "input_tokens": self.input_tokens_per_minute,
            "output_tokens": self.output_tokens_per_minute,
        }
        return {dimension: limit for dimension, limit in limits.items() if limit is not None}

    def token_bucket(self, per_minute: float) -> int:
        """A token bucket's size: ``token_burst``, or one second of the limit (at least 1)."""
        return self.token_burst if self.token_burst is not None else max(1, math.ceil(per_minute / 60.0))

    @property
    def enabled(self) -> bool:
        return self.requests_per_second is not None or self.adaptive

    @property
    def effective_burst(self) -> int:
        """``burst_size``, or one second's worth of requests (at least 1)."""
        if self.burst_size is not None:
            return self.burst_size
        return max(1, math.ceil(self.requests_per_second or 1.0))

    @classmethod
    def per_minute(cls, requests_per_minute: float, **kwargs: Any) -> RateLimiterConfig:
        """Build from a per-minute limit, as providers state them."""
        if (
            isinstance(requests_per_minute, bool)
            or not isinstance(requests_per_minute, int | float)
            or requests_per_minute <= 0
            or not math.isfinite(requests_per_minute)
        ):
            raise ConfigError(f"requests_per_minute must be a positive number, got {requests_per_minute!r}")
        return cls(requests_per_second=requests_per_minute / 60.0, **kwargs)


DEFAULT_MAX_COOLDOWN = 300.0


class CircuitBreakerConfig(_Frozen):
    """A circuit breaker per target.

    ``mode="consecutive"`` opens after ``failure_threshold`` consecutive provider failures; ``"failure_rate"``
    opens when, over the last ``window_seconds`` with at least ``minimum_calls`` calls, the failure share reaches
    ``failure_rate_threshold``. After ``cooldown_seconds`` it turns half-open and admits at most
    ``half_open_max_calls`` concurrent probes; ``success_threshold`` successes close it, a failure reopens it with
    the cooldown multiplied by ``cooldown_multiplier`` (capped at ``max_cooldown_seconds``).

    A spent quota (E2002) says nothing about the provider's health and never counts as a failure; with
    ``quota_cooldown_seconds`` set it opens the circuit at once for that long (a spent budget or a daily quota
    comes back in hours, not seconds), so traffic falls back instead of asking the spent account again.
    """

    enabled: bool = True
    failure_threshold: StrictInt = Field(default=5, ge=1)
    cooldown_seconds: float = Field(default=30.0, gt=0.0, le=LONGEST_WAIT)
    half_open_max_calls: StrictInt = Field(default=1, ge=1)
    success_threshold: StrictInt = Field(default=1, ge=1)
    mode: BreakerMode = "consecutive"
    failure_rate_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    window_seconds: float = Field(default=60.0, gt=0.0)
    minimum_calls: StrictInt = Field(default=10, ge=1)
    cooldown_multiplier: float = Field(default=1.0, ge=1.0)
    max_cooldown_seconds: float = Field(
        default=DEFAULT_MAX_COOLDOWN,
        gt=0.0,
        le=LONGEST_WAIT,
        description="default: 300 s, or cooldown_seconds when that is longer",
    )
    quota_cooldown_seconds: float | None = Field(default=None, gt=0.0, le=LONGEST_WAIT)

    @model_validator(mode="after")
    def _cooldown_cap(self) -> Self:
        if "max_cooldown_seconds" not in self.model_fields_set:  # a long cooldown raises the default cap
            self.__dict__["max_cooldown_seconds"] = max(DEFAULT_MAX_COOLDOWN, self.cooldown_seconds)
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise ValueError(
                f"max_cooldown_seconds ({self.max_cooldown_seconds}) must be >= "
                f"cooldown_seconds ({self.cooldown_seconds})"
            )
        return self


class BackpressureConfig(_Frozen):
    """An in-flight limit per target: at most ``max_inflight`` calls at once.

    Further callers queue (at most ``max_queue`` of them, for at most ``max_wait`` seconds); past either bound
    they are rejected at once with ``BackpressureError``.
    """

    max_inflight: StrictInt | None = Field(default=50, ge=1)
    max_wait: float | None = Field(default=30.0, ge=0.0, le=LONGEST_WAIT)
    max_queue: StrictInt | None = Field(default=1000, ge=0)

    @property
    def enabled(self) -> bool:
        return self.max_inflight is not None


class ResilientConfig(_Frozen):
    """Everything the executor needs: the four policies plus deadlines and where state lives.

    ``attempt_timeout`` bounds one attempt; ``total_timeout`` bounds the whole call, retries and fallbacks
    included (no sleep is started that would overrun it). ``state_url`` (``redis://...``) shares limiter state
    across processes. ``share_state=True`` (default) puts named targets in the process-wide registry scope, shared
    by every user naming them; ``False`` gives each executor, model or callback a scope of its own (it cannot
    be combined with ``resilient_(a)completion`` without ``registry=``: a scope per call would never remember).
    """

    # A rejected value is never echoed (pydantic's default): state_url may hold a password.
    model_config = ConfigDict(hide_input_in_errors=True)

    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limiter: RateLimiterConfig = Field(default_factory=RateLimiterConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    backpressure: BackpressureConfig = Field(default_factory=BackpressureConfig)
    attempt_timeout: float | None = Field(default=None, gt=0.0, le=LONGEST_WAIT)
    total_timeout: float | None = Field(default=None, gt=0.0, le=LONGEST_WAIT)
    state_url: str | None = None
    share_breaker_state: bool = False
    share_state: bool = True

    @model_validator(mode="after")
    def _timeouts_ordered(self) -> Self:
        if (
            self.attempt_timeout is not None
            and self.total_timeout is not None
            and self.attempt_timeout > self.total_timeout
        ):
            raise ValueError(
                f"attempt_timeout ({self.attempt_timeout}) must be <= total_timeout ({self.total_timeout})"
            )
        return self

    @field_validator("state_url")
    @classmethod
    def _state_url_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ValueError(
                f"state_url must start with redis://, rediss://, unix:// or memory://, got {redact_url(value)!r}"
            )
        return value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name == "state_url" and isinstance(value, str) else value)

    # --- presets ------------------------------------------------------------------------------------------

    @classmethod
    def interactive(cls, **overrides: Any) -> ResilientConfig:
        """For a user waiting on the answer: two quick retries, fail over fast, 30 s overall."""
        base: dict[str, Any] = {
            "retry": RetryConfig(max_retries=2, initial_delay=0.5, max_delay=4.0, max_retry_after=10.0),
            "circuit_breaker": CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=15.0),
            "attempt_timeout": 20.0,
            "total_timeout": 30.0,
        }
        return cls(**(base | overrides))

    @classmethod
    def batch(cls, **overrides: Any) -> ResilientConfig:
        """For background jobs: patient retries that sit out long Retry-After waits."""
        base: dict[str, Any] = {
            "retry": RetryConfig(
                max_retries=8,
                initial_delay=2.0,
                max_delay=120.0,
                max_retry_after=300.0,
                on_long_retry_after="cap",
            ),
            "rate_limiter": RateLimiterConfig(max_wait=600.0),
            "backpressure": BackpressureConfig(max_wait=600.0, max_queue=None),
            "circuit_breaker": CircuitBreakerConfig(failure_threshold=10, cooldown_seconds=60.0),
        }
        return cls(**(base | overrides))

    @classmethod
    def no_retry(cls, **overrides: Any) -> ResilientConfig:
        """Limits and breaker only; every error surfaces (or falls back) at once."""
        return cls(**({"retry": RetryConfig(max_retries=0)} | overrides))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ResilientConfig:
        """Build from ``AI_LIB_*`` variables; keyword ``overrides`` (whole sections or fields) win.

        Variables: ``AI_LIB_RPS``, ``AI_LIB_RPM``, ``AI_LIB_BURST``, ``AI_LIB_RATE_MAX_WAIT``,
        ``AI_LIB_BREAKER_FAILURE_THRESHOLD``, ``AI_LIB_BREAKER_COOLDOWN_SECS``, ``AI_LIB_MAX_INFLIGHT``,
        ``AI_LIB_MAX_RETRIES``, ``AI_LIB_ATTEMPT_TIMEOUT``, ``AI_LIB_TOTAL_TIMEOUT``, ``AI_LIB_STATE_URL``.
        """
        return build_config(cls, os.environ if env is None else env, overrides)


def _env_number(
    env: Mapping[str, str], name: str, kind: Callable[[str], float], *, zero_ok: bool = False
) -> float | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = kind(raw.strip()) + 0  # + 0 turns -0.0 into 0.0
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"environment variable {name}={raw!r} is not {expected}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind_of = "a non-negative" if zero_ok else "a positive"
        raise ConfigError(f"environment variable {name}={raw!r} must be {kind_of}, finite number")
    return value


def _allows_zero(section: str, field: str) -> bool:
    """Whether the field's own bound admits 0 (``ge=0``), so its variable may be 0 too."""
    model = ResilientConfig.model_fields[section].annotation if section else ResilientConfig
    assert isinstance(model, type)
    assert issubclass(model, BaseModel)
    metadata = model.model_fields[field].metadata
    return any(getattr(bound, "ge", None) == 0 for bound in metadata)


# (variable, section, field, parser)
ENV_VARIABLES: tuple[tuple[str, str, str, Callable[[str], float]], ...] = (
    ("AI_LIB_RPS", "rate_limiter", "requests_per_second", float),
    ("AI_LIB_BURST", "rate_limiter", "burst_size", int),
    ("AI_LIB_RATE_MAX_WAIT", "rate_limiter", "max_wait", float),
    ("AI_LIB_BREAKER_FAILURE_THRESHOLD", "circuit_breaker", "failure_threshold", int),
    ("AI_LIB_BREAKER_COOLDOWN_SECS", "circuit_breaker", "cooldown_seconds", float),
    ("AI_LIB_MAX_INFLIGHT", "backpressure", "max_inflight", int),
    ("AI_LIB_MAX_RETRIES", "retry", "max_retries", int),
    ("AI_LIB_ATTEMPT_TIMEOUT", "", "attempt_timeout", float),
    ("AI_LIB_TOTAL_TIMEOUT", "", "total_timeout", float),
)


def build_config(cls: type[ResilientConfig], env: Mapping[str, str], overrides: Mapping[str, Any]) -> ResilientConfig:
    sections: dict[str, dict[str, Any]] = {
        "retry": {},
        "rate_limiter": {},
        "circuit_breaker": {},
        "backpressure": {},
    }
    top: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for variable, section, field, parse in ENV_VARIABLES:
        value = _env_number(env, variable, parse, zero_ok=_allows_zero(section, field))
        if value is None:
            continue
        (sections[section] if section else top)[field] = value
        origin[f"{section}.{field}" if section else field] = variable
    rpm = _env_number(env, "AI_LIB_RPM", float)
    if rpm is not None:
        if "requests_per_second" in sections["rate_limiter"]:
            raise ConfigError("set only one of AI_LIB_RPS and AI_LIB_RPM")
        sections["rate_limiter"]["requests_per_second"] = rpm / 60.0
        origin["rate_limiter.requests_per_second"] = "AI_LIB_RPM"
    state_url = env.get("AI_LIB_STATE_URL", "").strip()
    if state_url:
        top["state_url"] = state_url
        origin["state_url"] = "AI_LIB_STATE_URL"

    data: dict[str, Any] = dict(top)
    for section, values in sections.items():
        if section in overrides or not values:
            continue
        model_cls = ResilientConfig.model_fields[section].annotation
        assert isinstance(model_cls, type)
        assert issubclass(model_cls, BaseModel)
        try:
            data[section] = model_cls(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, origin, section)) from None
    data.update(overrides)
    try:
        return cls(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin, "")) from None


def _explain(exc: ValidationError, origin: Mapping[str, str], section: str) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in ((section,) if section else ()) + tuple(error["loc"]))
        if error["loc"]:
            variables = [origin[loc]] if loc in origin else []
        else:  # a rule across fields: name the variables of the fields it mentions
            prefix = f"{section}." if section else ""
            variables = [
                variable
                for key, variable in origin.items()
                if key.startswith(prefix) and re.search(rf"\b{re.escape(key[len(prefix) :])}\b", error["msg"])
            ]
        where = loc or section or "config"
        if variables:
            where += f" (from environment variable{'s' if len(variables) > 1 else ''} {', '.join(variables)})"
        lines.append(f"{where}: {error['msg']}")
    return "invalid resilience configuration: " + "; ".join(lines)
