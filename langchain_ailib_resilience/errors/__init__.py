"""Errors: the AI-Protocol code table, the exception hierarchy, and normalisation of provider errors."""

from .classify import classify_error, classify_http
from .codes import StandardErrorCode
from .exceptions import (
    AttemptRecord,
    AuthenticationError,
    BackpressureError,
    CancelledRequestError,
    CircuitOpenError,
    ConflictError,
    DeadlineExceededError,
    FallbackableError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitedError,
    RateLimitExceededError,
    RequestTooLargeError,
    ResilienceError,
    RetryableError,
    ServerError,
    UnknownError,
)
from .redact import redact
from .retry_after import headers_of, parse_retry_after

__all__ = [
    "AttemptRecord",
    "AuthenticationError",
    "BackpressureError",
    "CancelledRequestError",
    "CircuitOpenError",
    "ConflictError",
    "DeadlineExceededError",
    "FallbackableError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitExceededError",
    "RateLimitedError",
    "RequestTooLargeError",
    "ResilienceError",
    "RetryableError",
    "ServerError",
    "StandardErrorCode",
    "UnknownError",
    "classify_error",
    "classify_http",
    "headers_of",
    "parse_retry_after",
    "redact",
]
