"""The exceptions this package raises: every provider error, once normalised, is one of these.

``ResilienceError(message, code=...)`` builds the class registered for that code, so a normalised error is an
instance of ``RetryableError`` / ``FallbackableError`` exactly when its code's flags say so. That is what lets
LangChain's type-based ``with_retry(retry_if_exception_type=...)`` and
``with_fallbacks(exceptions_to_handle=...)`` work on our errors.

Every class is also the matching ``langchain_core.exceptions`` class (``RateLimitedError`` is a
``ModelRateLimitError``, ``ServerError`` a ``ModelAPIError``, ``RequestTooLargeError`` a ``ContextOverflowError``...)
and ``is_retryable`` equals the code's ``retryable``, so LangChain's own machinery reads our errors as it reads a
partner package's: ``ModelRetryMiddleware``'s default ``retry_on`` skips an E1001 or a spent quota (a
``ModelRateLimitError`` that is not retryable) and never retries an open circuit. langchain-core is a hard
dependency, so the core classes inherit these directly: one class per code on every path, LiteLLM's included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from .codes import StandardErrorCode
from .redact import redact


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One failed attempt in a call's history: which target, which attempt, what went wrong."""

    target: str
    attempt: int
    code: StandardErrorCode
    message: str
    local: bool = False

    def __str__(self) -> str:
        where = "rejected locally" if self.local else f"attempt {self.attempt}"
        return f"{self.target} {where}: {self.code.error_name} ({self.code.value}) {self.message}"


class ResilienceError(ModelError):
    """Base of every error the library raises, and of every provider error after normalisation.

    Attributes:
        code: the AI-Protocol ``StandardErrorCode``; ``retryable`` and ``fallbackable`` come from it.
        retry_after: seconds the provider (or a local limit) asked the caller to wait, if known.
        provider, model: where the error came from (``"openai"``, ``"gpt-4o"``), if known.
        status_code: the HTTP status the provider answered with, if any.
        provider_code: the provider's own error code or type from the body (``"insufficient_quota"``).
        reason: extra detail worth keeping, such as a content filter's verdict.
        local: True when the library rejected the call itself and no request was sent (open circuit,
            rate-limit wait past its bound, full in-flight limit, exhausted deadline).
        attempts: the failed attempts that led here, oldest first (set by the executor and fallback chain).
    The original exception is ``__cause__``. Messages are scrubbed of API keys and bearer tokens.
    """

    default_code: ClassVar[StandardErrorCode] = StandardErrorCode.UNKNOWN
    _by_code: ClassVar[dict[StandardErrorCode, type[ResilienceError]]] = {}

    code: StandardErrorCode
    retry_after: float | None
    provider: str | None
    model: str | None
    status_code: int | None
    provider_code: str | None
    reason: str | None
    local: bool
    attempts: list[AttemptRecord]

    def __new__(cls, message: str = "", *args: Any, code: StandardErrorCode | str | None = None, **kwargs: Any) -> Self:
        # Dispatch the generic classes to the class registered for the code, so the markers hold.
        target: type[Self] = cls
        if code is not None and cls in _GENERIC:
            registered = ResilienceError._by_code.get(StandardErrorCode.parse(code), cls)
            if issubclass(registered, cls):
                target = registered
        return super().__new__(target)

    def __init__(
        self,
        message: str = "",
        *,
        code: StandardErrorCode | str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        provider_code: str | None = None,
        reason: str | None = None,
        local: bool = False,
        attempts: list[AttemptRecord] | None = None,
    ) -> None:
        self.code = StandardErrorCode.parse(code) if code is not None else self.default_code
        message = redact(message or self.code.description)
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.provider_code = provider_code
        self.reason = redact(reason) if reason else None
        self.local = local
        self.attempts = list(attempts or [])

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    @property
    def fallbackable(self) -> bool:
        return self.code.fallbackable

    @property
    def is_retryable(self) -> bool:
        """LangChain's spelling of ``retryable`` (``ModelError.is_retryable``), read by ``ModelRetryMiddleware``."""
        return self._retryable_for_callers()

    @is_retryable.setter
    def is_retryable(self, value: bool) -> None:
        raise AttributeError("is_retryable follows the error's code; build the error with the code you mean")

    def _retryable_for_callers(self) -> bool:
        return self.code.retryable

    @property
    def error_name(self) -> str:
        return self.code.error_name

    def __str__(self) -> str:
        where = "/".join(part for part in (self.provider, self.model) if part)
        prefix = f"[{self.code.value} {self.code.error_name}]"
        text = f"{prefix} {where + ': ' if where else ''}{self.message}"
        if self.reason and self.reason not in self.message:
            text += f" (reason: {self.reason})"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:.3g}s)"
        if self.attempts:
            text += "; attempts: " + "; ".join(str(a) for a in self.attempts)
        return text

    def __repr__(self) -> str:
        fields = [f"code={self.code.value!s}", f"message={self.message!r}"]
        for name in ("provider", "model", "status_code", "provider_code", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        if self.local:
            fields.append("local=True")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only state across pickling (multiprocessing, caches).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[ResilienceError], message: str, state: dict[str, Any]) -> ResilienceError:
    error = cls.__new__(cls, message)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RetryableError(ResilienceError):
    """Marker: the code says retrying the same target may succeed."""


class FallbackableError(ResilienceError):
    """Marker: the code says another target may succeed."""


_GENERIC: frozenset[type[ResilienceError]] = frozenset({ResilienceError, RetryableError, FallbackableError})


def _register(code: StandardErrorCode):  # type: ignore[no-untyped-def]
    def wrap(cls: type[ResilienceError]) -> type[ResilienceError]:
        assert issubclass(cls, RetryableError) == code.retryable, cls
        assert issubclass(cls, FallbackableError) == code.fallbackable, cls
        cls.default_code = code
        ResilienceError._by_code[code] = cls
        return cls

    return wrap


@_register(StandardErrorCode.INVALID_REQUEST)
class InvalidRequestError(ResilienceError, ModelInvalidRequestError):
    """E1001: the request itself is wrong; neither retry nor another model will fix it."""


@_register(StandardErrorCode.AUTHENTICATION)
class AuthenticationError(FallbackableError, ModelAuthenticationError):
    """E1002: bad or missing credentials for this provider; another provider may still work."""


@_register(StandardErrorCode.PERMISSION_DENIED)
class PermissionDeniedError(ResilienceError, ModelPermissionDeniedError):
    """E1003: valid credentials without access to this resource."""


@_register(StandardErrorCode.NOT_FOUND)
class NotFoundError(ResilienceError, ModelNotFoundError):
    """E1004: the model or endpoint does not exist."""


@_register(StandardErrorCode.REQUEST_TOO_LARGE)
class RequestTooLargeError(ResilienceError, ContextOverflowError):
    """E1005: the input exceeds the context window or payload limit."""


@_register(StandardErrorCode.RATE_LIMITED)
class RateLimitedError(RetryableError, FallbackableError, ModelRateLimitError):
    """E2001: too many requests for now; retry after a wait, or go elsewhere."""


@_register(StandardErrorCode.QUOTA_EXHAUSTED)
class QuotaExhaustedError(FallbackableError, ModelRateLimitError):
    """E2002: the account's quota or credit is spent; retrying will not help, another provider may.

    A ``ModelRateLimitError`` (the provider answered 429) whose ``is_retryable`` is False.
    """


@_register(StandardErrorCode.SERVER_ERROR)
class ServerError(RetryableError, FallbackableError, ModelAPIError):
    """E3001: the provider failed (including connection failures, which are ``ProviderConnectionError``)."""


class ProviderConnectionError(ServerError, ModelConnectionError):
    """E3001 from a connection failure (refused, reset, DNS): the provider could not be reached at all."""


@_register(StandardErrorCode.OVERLOADED)
class OverloadedError(RetryableError, FallbackableError, ModelAPIError):
    """E3002: the provider is overloaded or unavailable (503, Anthropic 529)."""


@_register(StandardErrorCode.TIMEOUT)
class ProviderTimeoutError(RetryableError, FallbackableError, ModelTimeoutError):
    """E3003: no answer in time (connect/read timeouts, 408, 504, an attempt timeout)."""


@_register(StandardErrorCode.CONFLICT)
class ConflictError(RetryableError):
    """E4001: a state conflict; retry after a short delay."""


@_register(StandardErrorCode.CANCELLED)
class CancelledRequestError(ResilienceError):
    """E4002: the caller cancelled. Used for reporting only: the original cancellation is always re-raised."""


@_register(StandardErrorCode.UNKNOWN)
class UnknownError(ResilienceError):
    """E9999: could not be classified; neither retried nor fallen back from, to be safe."""


# --- Local rejections: raised before any request is sent. ---------------------------------------------------


class CircuitOpenError(OverloadedError):
    """The target's circuit breaker rejected the call; ``retry_after`` is the cooldown left.

    Fallbackable, so an open circuit on one target sends the call to the next one, in our fallbacks and in
    LangChain's ``with_fallbacks``. The executor never retries it on the same target.
    """

    def __init__(self, message: str = "", *, target: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        kwargs.setdefault("code", StandardErrorCode.OVERLOADED)
        super().__init__(message or f"circuit open for {target or 'target'}", **kwargs)
        self.target = target

    def _retryable_for_callers(self) -> bool:
        # For retry layers above us (ModelRetryMiddleware): calling again at once meets the same open circuit;
        # the cooldown is ``retry_after``. Our executor never retries it either.
        return False


class RateLimitExceededError(RateLimitedError):
    """A local rate limiter would make the caller wait longer than allowed; ``retry_after`` says how long."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        kwargs.setdefault("code", StandardErrorCode.RATE_LIMITED)
        super().__init__(message or "local rate limit: wait would exceed its bound", **kwargs)


class BackpressureError(OverloadedError):
    """The in-flight limit is full and its queue is full or the wait ran past its bound."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        kwargs.setdefault("code", StandardErrorCode.OVERLOADED)
        super().__init__(message or "in-flight limit reached", **kwargs)


class DeadlineExceededError(ProviderTimeoutError):
    """The call's total deadline ran out. Not retried: there is no time left to retry in."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("code", StandardErrorCode.TIMEOUT)
        super().__init__(message or "total deadline exceeded", **kwargs)
