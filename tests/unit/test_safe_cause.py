"""The provider exception kept as ``__cause__`` prints no credential in a traceback, and stays the same object."""

from __future__ import annotations

import logging
import traceback

import httpx
import openai
import pytest

from langchain_ailib_resilience.errors import classify_error
from langchain_ailib_resilience.errors._cause import RedactedCause

KEY = "sk-proj-AbCdEfGhIjKlMnOpQrSt0123"


def _openai_auth_error() -> openai.AuthenticationError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(401, request=request, json={"error": {"message": f"Incorrect API key: {KEY}"}})
    return openai.AuthenticationError(
        f"Error code: 401 - Incorrect API key provided: {KEY}", response=response, body=None
    )


def _printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_the_sdk_cause_is_kept_and_printed_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    original = _openai_auth_error()
    try:
        raise original
    except openai.AuthenticationError as caught:
        error = classify_error(caught)
    assert error.__cause__ is original
    assert isinstance(error.__cause__, openai.AuthenticationError)
    assert error.__cause__.status_code == 401
    assert "Incorrect API key provided" in str(error.__cause__)
    logger = logging.getLogger("app")
    with caplog.at_level(logging.ERROR):
        try:
            raise error
        except Exception:
            logger.exception("call failed")
    assert KEY not in caplog.text
    assert "AuthenticationError" in caplog.text
    assert KEY not in _printed(error)


def test_the_cause_chain_is_redacted_too() -> None:
    inner = httpx.HTTPStatusError(
        f"Client error '429' for url 'https://generativelanguage.googleapis.com/v1beta/models/x?key={KEY}'",
        request=httpx.Request("POST", "http://x"),
        response=httpx.Response(429),
    )
    outer = RuntimeError("gemini call failed")
    outer.__cause__ = inner
    outer.add_note(f"while calling with Authorization: Bearer {KEY}")
    error = classify_error(outer)
    assert KEY not in _printed(error)


class _ComputedStr(Exception):
    """An SDK error whose text is computed from a non-string attribute we do not rewrite."""

    def __init__(self, parts: list[str]) -> None:
        super().__init__()
        self.parts = parts

    def __str__(self) -> str:
        return " ".join(self.parts)


def test_a_cause_that_cannot_be_redacted_in_place_is_replaced() -> None:
    error = classify_error(_ComputedStr(["bad", "key", KEY]))
    assert isinstance(error.__cause__, RedactedCause)
    assert error.__cause__.exc_type == "_ComputedStr"
    assert KEY not in _printed(error)
