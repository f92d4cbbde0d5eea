"""Our errors speak LangChain's error taxonomy (``langchain_core.exceptions``).

Every normalised error is also the matching ``ModelError`` subclass with ``is_retryable`` equal to its code's
``retryable``, so LangChain's own retry layers (``ModelRetryMiddleware``'s ``default_retry_on``) decide as our
executor does; and ``classify_error`` reads LangChain's classes, including the partner packages' dual-inheritance
ones (``OpenAIRateLimitError(openai.RateLimitError, ModelRateLimitError)``).
"""

from __future__ import annotations

import pickle
from typing import Any

import httpx2
import openai
import pytest
from langchain.agents.middleware._retry import default_retry_on
from langchain_core import exceptions as lc

from langchain_ailib_resilience import (
    BackpressureError,
    CircuitOpenError,
    DeadlineExceededError,
    FallbackableError,
    ProviderConnectionError,
    RateLimitExceededError,
    ResilienceError,
    RetryableError,
    StandardErrorCode,
    classify_error,
)

C = StandardErrorCode

# The LangChain class each code is, and must be.
EXPECTED: dict[StandardErrorCode, type[lc.ModelError]] = {
    C.INVALID_REQUEST: lc.ModelInvalidRequestError,
    C.AUTHENTICATION: lc.ModelAuthenticationError,
    C.PERMISSION_DENIED: lc.ModelPermissionDeniedError,
    C.NOT_FOUND: lc.ModelNotFoundError,
    C.REQUEST_TOO_LARGE: lc.ContextOverflowError,
    C.RATE_LIMITED: lc.ModelRateLimitError,
    C.QUOTA_EXHAUSTED: lc.ModelRateLimitError,
    C.SERVER_ERROR: lc.ModelAPIError,
    C.OVERLOADED: lc.ModelAPIError,
    C.TIMEOUT: lc.ModelTimeoutError,
    C.CONFLICT: lc.ModelError,
    C.CANCELLED: lc.ModelError,
    C.UNKNOWN: lc.ModelError,
}

_SPECIFIC = tuple(cls for cls in set(EXPECTED.values()) if cls is not lc.ModelError)


def test_every_code_has_an_expected_class() -> None:
    assert set(EXPECTED) == set(StandardErrorCode)


@pytest.mark.parametrize("code", list(StandardErrorCode), ids=lambda c: f"{c.value}-{c.error_name}")
def test_each_code_is_its_langchain_class_with_matching_is_retryable(code: StandardErrorCode) -> None:
    error = ResilienceError("failed", code=code)
    assert isinstance(error, EXPECTED[code])
    # Exactly one specific LangChain class (or none, for codes LangChain has no word for).
    specific = [cls for cls in _SPECIFIC if isinstance(error, cls)]
    assert specific == ([] if EXPECTED[code] is lc.ModelError else [EXPECTED[code]])
    assert error.is_retryable is code.retryable
    assert default_retry_on(error) is code.retryable
    # Our own semantics are untouched.
    assert isinstance(error, ResilienceError)
    assert isinstance(error, RetryableError) is code.retryable
    assert isinstance(error, FallbackableError) is code.fallbackable


def test_quota_is_a_rate_limit_error_that_is_not_retryable() -> None:
    error = ResilienceError("spent", code=C.QUOTA_EXHAUSTED)
    assert isinstance(error, lc.ModelRateLimitError)
    assert lc.ModelRateLimitError.is_retryable is True  # LangChain's class default...
    assert error.is_retryable is False  # ...is overridden by the code
    assert default_retry_on(error) is False


@pytest.mark.parametrize(
    ("error", "cls", "retryable"),
    [
        (CircuitOpenError(target="openai/gpt-4o", retry_after=3.0), lc.ModelAPIError, False),
        (RateLimitExceededError(retry_after=1.0), lc.ModelRateLimitError, True),
        (BackpressureError(), lc.ModelAPIError, True),
        (DeadlineExceededError(), lc.ModelTimeoutError, True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_local_rejections(error: ResilienceError, cls: type[lc.ModelError], retryable: bool) -> None:
    assert isinstance(error, cls)
    assert error.is_retryable is retryable
    assert default_retry_on(error) is retryable


def test_open_circuit_is_not_retried_by_langchain_but_stays_fallbackable() -> None:
    error = CircuitOpenError(target="t")
    assert error.is_retryable is False and default_retry_on(error) is False
    assert isinstance(error, FallbackableError)
    assert error.code is C.OVERLOADED and error.retryable  # the code's own flag is unchanged


@pytest.mark.parametrize("code", list(StandardErrorCode), ids=lambda c: c.value)
def test_pickling_keeps_class_and_flags(code: StandardErrorCode) -> None:
    error = ResilienceError("failed", code=code, provider="openai", retry_after=2.0)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert clone.is_retryable is error.is_retryable
    assert clone.retry_after == 2.0


# --- classify_error reads LangChain's classes ----------------------------------------------------------------


def _response(status: int, body: Any = None) -> httpx2.Response:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return httpx2.Response(status, json=body, request=request)


def _openai_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


def test_bare_langchain_classes_map() -> None:
    cases = {
        lc.ModelRateLimitError: C.RATE_LIMITED,
        lc.ModelAPIError: C.SERVER_ERROR,
        lc.ModelTimeoutError: C.TIMEOUT,
        lc.ModelConnectionError: C.SERVER_ERROR,
        lc.ContextOverflowError: C.REQUEST_TOO_LARGE,
        lc.ModelAuthenticationError: C.AUTHENTICATION,
        lc.ModelPermissionDeniedError: C.PERMISSION_DENIED,
        lc.ModelNotFoundError: C.NOT_FOUND,
        lc.ModelInvalidRequestError: C.INVALID_REQUEST,
    }
    for cls, code in cases.items():
        error = classify_error(cls("failed"))
        assert error.code is code, cls
        assert isinstance(error, cls), cls  # normalised, it is still the class it came in as
        assert error.is_retryable is code.retryable


def test_connection_failures_are_model_connection_errors() -> None:
    import httpx

    for exc in (
        httpx.ConnectError("connection refused"),
        lc.ModelConnectionError("unreachable"),
        ConnectionResetError("reset by peer"),
    ):
        error = classify_error(exc)
        assert isinstance(error, ProviderConnectionError), exc
        assert isinstance(error, lc.ModelConnectionError) and error.is_retryable
        assert error.code is C.SERVER_ERROR
    # A provider that answered 500 was reached: an API error, not a connection error.
    answered = classify_error(openai.InternalServerError("boom", response=_response(500), body=None))
    assert isinstance(answered, lc.ModelAPIError) and not isinstance(answered, lc.ModelConnectionError)


def test_langchain_openai_dual_inheritance_classes() -> None:
    from langchain_openai.chat_models import base

    overflow_body = _openai_body("This model's maximum context length is 8192 tokens", "invalid_request_error")
    overflow = base.OpenAIContextOverflowError(
        message="context_length_exceeded", response=_response(400, overflow_body), body=overflow_body["error"]
    )
    error = classify_error(overflow)
    assert error.code is C.REQUEST_TOO_LARGE  # the LangChain diagnosis beats the 400
    assert isinstance(error, lc.ContextOverflowError) and not error.is_retryable

    quota_body = _openai_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota")
    quota = base.OpenAIRateLimitError(message="quota", response=_response(429, quota_body), body=quota_body["error"])
    error = classify_error(quota)
    assert error.code is C.QUOTA_EXHAUSTED  # the body's code beats ModelRateLimitError's default
    assert isinstance(error, lc.ModelRateLimitError) and error.is_retryable is False

    rate_body = _openai_body("Rate limit reached for requests per min", "requests", "rate_limit_exceeded")
    rate = base.OpenAIRateLimitError(message="slow down", response=_response(429, rate_body), body=rate_body["error"])
    error = classify_error(rate)
    assert error.code is C.RATE_LIMITED and error.is_retryable

    invalid = base.OpenAIInvalidRequestError(message="bad", response=_response(400), body=None)
    assert classify_error(invalid).code is C.INVALID_REQUEST


def test_langchain_anthropic_rate_limit_class() -> None:
    from langchain_anthropic.chat_models import AnthropicRateLimitError

    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "per-minute rate limit"}}
    error = classify_error(AnthropicRateLimitError("limited", response=_response(429, body), body=body))
    assert error.code is C.RATE_LIMITED
    assert isinstance(error, lc.ModelRateLimitError) and error.is_retryable


def test_refusal_is_not_retried() -> None:
    error = classify_error(lc.ModelRefusalError("no"))
    assert error.is_retryable is False and default_retry_on(error) is False
    assert error.reason == "refusal"
