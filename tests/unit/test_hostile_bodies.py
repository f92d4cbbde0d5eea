"""Hostile or odd inputs to the classifier: the HTTP status still decides, and classification never raises."""

from __future__ import annotations

import httpx
import openai
import pytest

from langchain_ailib_resilience.errors import StandardErrorCode, classify_error, classify_http
from langchain_ailib_resilience.errors.retry_after import _from_body

DEPTHS = [1_000, 5_000, 100_000]


def _bodies(depth: int) -> list[str]:
    return ["[" * depth + "]" * depth, '{"error":' * depth + "1" + "}" * depth]


@pytest.mark.parametrize("depth", DEPTHS)
def test_deeply_nested_429_body_is_still_a_rate_limit(depth: int) -> None:
    for body in _bodies(depth):
        assert classify_http(429, body, provider="openai").code is StandardErrorCode.RATE_LIMITED
        assert classify_http(503, body.encode(), provider="openai").code is StandardErrorCode.OVERLOADED


@pytest.mark.parametrize("depth", DEPTHS)
def test_deeply_nested_body_in_an_sdk_error_is_still_a_rate_limit(depth: int) -> None:
    for body in _bodies(depth):
        request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
        response = httpx.Response(429, request=request, content=body.encode())
        error = openai.RateLimitError(f"Error code: 429 - {body}", response=response, body=None)
        assert classify_error(error).code is StandardErrorCode.RATE_LIMITED


def test_deeply_nested_body_gives_no_retry_after() -> None:
    assert _from_body("[" * 5_000 + "]" * 5_000) is None


@pytest.mark.parametrize("value", ["text", 42, None, b"bytes", object()])
def test_classify_error_of_a_non_exception_is_e9999_naming_the_value(value: object) -> None:
    result = classify_error(value)  # type: ignore[arg-type]
    assert result.code is StandardErrorCode.UNKNOWN
    assert type(value).__qualname__ in str(result)
    assert result.__cause__ is None


def test_classify_error_of_a_non_exception_is_redacted() -> None:
    assert "sk-abcdef1234567890" not in str(classify_error("bad key sk-abcdef1234567890"))  # type: ignore[arg-type]
