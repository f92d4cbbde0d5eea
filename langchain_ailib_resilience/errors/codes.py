"""AI-Protocol V2 standard error codes and the decisions they drive.

The table mirrors ``error-codes.yaml`` of the AI-Protocol specification (V2). Every retry, fallback and
breaker decision in this package reads the flags from here, so a code means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Category = Literal["client", "rate", "server", "operational", "unknown"]
HttpStatus = int | tuple[int, ...] | str


@dataclass(frozen=True, slots=True)
class _CodeInfo:
    error_name: str
    category: Category
    http_status: HttpStatus
    retryable: bool
    fallbackable: bool
    description: str
    recovery_hint: str


_TABLE: dict[str, _CodeInfo] = {
    "E1001": _CodeInfo(
        "invalid_request",
        "client",
        400,
        False,
        False,
        "Malformed request, invalid parameters, or missing required fields",
        "Check request parameters against the provider's API documentation",
    ),
    "E1002": _CodeInfo(
        "authentication",
        "client",
        401,
        False,
        True,
        "Invalid, expired, or missing API key",
        "Verify API key is set correctly via environment variable or keyring",
    ),
    "E1003": _CodeInfo(
        "permission_denied",
        "client",
        403,
        False,
        False,
        "Valid credentials but insufficient permissions for the requested resource",
        "Check account permissions and model access policies",
    ),
    "E1004": _CodeInfo(
        "not_found",
        "client",
        404,
        False,
        False,
        "Requested model, endpoint, or resource does not exist",
        "Verify model ID and endpoint URL in the provider manifest",
    ),
    "E1005": _CodeInfo(
        "request_too_large",
        "client",
        413,
        False,
        False,
        "Input exceeds the model's context window or the API payload size limit",
        "Reduce input size or use a model with a larger context window",
    ),
    "E2001": _CodeInfo(
        "rate_limited",
        "rate",
        429,
        True,
        True,
        "Request rate limit exceeded (requests per second/minute)",
        "Retry with exponential backoff; check rate_limit_headers for timing",
    ),
    "E2002": _CodeInfo(
        "quota_exhausted",
        "rate",
        429,
        False,
        True,
        "Account usage quota or billing limit has been reached",
        "Upgrade plan or wait for quota reset; fallback to another provider",
    ),
    "E3001": _CodeInfo(
        "server_error",
        "server",
        500,
        True,
        True,
        "Internal server error on the provider side",
        "Retry with backoff; if persistent, check provider status page",
    ),
    "E3002": _CodeInfo(
        "overloaded",
        "server",
        503,
        True,
        True,
        "Provider service is temporarily overloaded or under maintenance",
        "Retry with longer backoff; consider fallback to another provider",
    ),
    "E3003": _CodeInfo(
        "timeout",
        "server",
        (504, 408),
        True,
        True,
        "Request timed out before a response was received",
        "Increase timeout or reduce request complexity; retry may succeed",
    ),
    "E4001": _CodeInfo(
        "conflict",
        "operational",
        409,
        True,
        False,
        "State conflict, such as concurrent modification of the same resource",
        "Retry after a short delay",
    ),
    "E4002": _CodeInfo(
        "cancelled",
        "operational",
        "N/A",
        False,
        False,
        "Request was cancelled by the client",
        "No action needed — cancellation was intentional",
    ),
    "E9999": _CodeInfo(
        "unknown",
        "unknown",
        "varies",
        False,
        False,
        "Error could not be classified into a standard category",
        "Inspect the original provider error for details",
    ),
}

# Aliases the specification lists for compliance (capability guards reuse E1005).
_ALIASES: dict[str, str] = {"capability_not_declared": "E1005", "unsupported_capability": "E1005"}


class StandardErrorCode(StrEnum):
    """The 13 AI-Protocol V2 error codes; the value is the code string (``"E2001"``)."""

    INVALID_REQUEST = "E1001"
    AUTHENTICATION = "E1002"
    PERMISSION_DENIED = "E1003"
    NOT_FOUND = "E1004"
    REQUEST_TOO_LARGE = "E1005"
    RATE_LIMITED = "E2001"
    QUOTA_EXHAUSTED = "E2002"
    SERVER_ERROR = "E3001"
    OVERLOADED = "E3002"
    TIMEOUT = "E3003"
    CONFLICT = "E4001"
    CANCELLED = "E4002"
    UNKNOWN = "E9999"

    @property
    def _info(self) -> _CodeInfo:
        return _TABLE[self.value]

    @property
    def code(self) -> str:
        return self.value

    @property
    def error_name(self) -> str:
        return self._info.error_name

    @property
    def category(self) -> Category:
        return self._info.category

    @property
    def http_status(self) -> HttpStatus:
        """As the specification states it: an int, a tuple of ints (E3003), ``"N/A"`` or ``"varies"``."""
        return self._info.http_status

    @property
    def http_statuses(self) -> tuple[int, ...]:
        """The HTTP statuses this code stands for, as a tuple (empty where the spec names none)."""
        status = self._info.http_status
        if isinstance(status, int):
            return (status,)
        if isinstance(status, tuple):
            return status
        return ()

    @property
    def retryable(self) -> bool:
        return self._info.retryable

    @property
    def fallbackable(self) -> bool:
        return self._info.fallbackable

    @property
    def description(self) -> str:
        return self._info.description

    @property
    def recovery_hint(self) -> str:
        return self._info.recovery_hint

    @property
    def indicts_provider(self) -> bool:
        """Whether a failure with this code says the *provider* is unhealthy (and so counts toward a breaker).

        Rate limits, server errors, overload and timeouts do; caller errors (bad request, auth, too large),
        quota, conflicts, cancellation and unknown errors do not: opening a circuit on them would punish
        healthy providers for the caller's mistakes.
        """
        return self in _INDICTING

    @classmethod
    def from_code(cls, code: str) -> StandardErrorCode:
        """Look up by code string (``"E2001"``); raises ``ValueError`` naming the bad code."""
        try:
            return cls(code.strip().upper())
        except ValueError:
            raise ValueError(f"unknown AI-Protocol error code {code!r}; known: {', '.join(_TABLE)}") from None

    @classmethod
    def from_name(cls, name: str) -> StandardErrorCode:
        """Look up by error name (``"rate_limited"``) or a compliance alias; raises ``ValueError``."""
        key = name.strip().lower()
        for member in cls:
            if member.error_name == key:
                return member
        if key in _ALIASES:
            return cls(_ALIASES[key])
        names = ", ".join(info.error_name for info in _TABLE.values())
        raise ValueError(f"unknown AI-Protocol error name {name!r}; known: {names}")

    @classmethod
    def parse(cls, value: str | StandardErrorCode) -> StandardErrorCode:
        """Accept a member, a code (``"E2001"``), a member name (``"RATE_LIMITED"``) or an error name."""
        if isinstance(value, StandardErrorCode):
            return value
        text = value.strip()
        if text.upper() in _TABLE:
            return cls(text.upper())
        if text.upper() in cls.__members__:
            return cls.__members__[text.upper()]
        return cls.from_name(text)


_INDICTING = frozenset(
    {
        StandardErrorCode.RATE_LIMITED,
        StandardErrorCode.SERVER_ERROR,
        StandardErrorCode.OVERLOADED,
        StandardErrorCode.TIMEOUT,
    }
)
