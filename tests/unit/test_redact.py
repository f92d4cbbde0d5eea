"""redact() removes credentials; its substring precheck never changes what the patterns would do."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_ailib_resilience.errors.redact import redact

# errors/__init__ exports the function under the module's name, so fetch the module itself.
redact_module = sys.modules["langchain_ailib_resilience.errors.redact"]

FRAGMENTS = [
    "sk-abcdef123456",
    "sk-ant-api03-xyz789abc",
    "Bearer eyJhbGciOi.abc",
    "api_key=abcd1234",
    '"x-api-key": "zzzz9999"',
    "AIzaSyA1234567890abcdefghijklmno",
    "AKIAABCDEFGHIJKLMNOP",
    "gsk_abcdefghijklm",
    "password: hunter2hunter2",
    "token=abcdefgh",
    "Authorization: Token abc123def456",
    "?key=abcd1234efgh",
    "&api-key=abcd1234",
    "hf_abcdefghijklmnopqrstuvwxyz",
    "https://user:pw123456@host.example/v1",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "@",
    "://",
    "rate limit reached",
    "see https://platform.openai.com/account/billing",
    " ",
    "overloaded",
]


def full_redact(text: str) -> str:
    """The patterns alone, without the precheck."""
    for pattern in redact_module._PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + redact_module.REDACTED, text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: m.group(1) + " " + redact_module.REDACTED, text)
        else:
            text = pattern.sub(redact_module.REDACTED, text)
    return text


@settings(max_examples=300)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=8))
def test_precheck_never_changes_the_result(parts: list[str]) -> None:
    text = "".join(parts)
    assert redact(text) == full_redact(text)


def test_known_secrets_are_removed() -> None:
    for secret in (
        "sk-abcdef123456",
        "eyJhbGciOi.abc",
        "abcd1234",
        "AIzaSyA1234567890abcdefghijklmno",
        "hunter2hunter2",
    ):
        text = (
            f"error near {secret} here" if secret.startswith(("sk-", "AIza")) else f"Bearer {secret} api_key={secret}"
        )
        if secret == "hunter2hunter2":
            text = f"password: {secret}"
        assert secret not in redact(text)
    assert redact("Overloaded, try again later") == "Overloaded, try again later"


# Each (text, secret): the secret must be gone from redact(text).
LEAKS = [
    ("Authorization: Token abc123def456ghi", "abc123def456ghi"),
    ('{"authorization": "Token abc123def456ghi"}', "abc123def456ghi"),
    ("authorization=Digest username=x, response=abc123def456ghi", "abc123def456ghi"),
    ("GET https://gw.example/v1?key=QWERTYUIOP123456 failed", "QWERTYUIOP123456"),
    ("GET https://gw.example/v1?x=1&api-key=QWERTYUIOP123456 failed", "QWERTYUIOP123456"),
    ("GET https://gw.example/v1?apikey=QWERTYUIOP123456", "QWERTYUIOP123456"),
    ("GET https://gw.example/v1?token=QWERTYUIOP123456#x", "QWERTYUIOP123456"),
    ("GET https://gw.example/v1?access_token=QWERTYUIOP123456", "QWERTYUIOP123456"),
    ("GET https://gw.example/v1?sig=QWERTYUIOP123456&se=2026", "QWERTYUIOP123456"),
    ("invalid token hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
    ("key sk-ant-api03-AbCdEfGhIjKlMnOp_qrstuv-wxyz", "AbCdEfGhIjKlMnOp_qrstuv-wxyz"),
    ("key AIzaSyA1234567890abcdefghijklmnopq", "AIzaSyA1234567890abcdefghijklmnopq"),
    ("access key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("connect to http://alice:s3cr3tpassw0rd@10.0.0.1:8000/v1 refused", "s3cr3tpassw0rd"),
    ("connect to redis://:s3cr3tpassw0rd@10.0.0.1:6379/0 refused", "s3cr3tpassw0rd"),
    ("connect to http://sometokenvalue1234@gw.example/v1 refused", "sometokenvalue1234"),
    ("github ghp_abcdefghijklmnopqrstuvwxyz0123456789 rejected", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz rejected", "abcdefghijklmnopqrstuvwxyz"),
    ("oauth ya29.a0AfH6SMBabcdefghijklmnopqrstuv rejected", "a0AfH6SMBabcdefghijklmnopqrstuv"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N rejected", "dozjgNryP4J3jVmNHl0w5N"),
    ("replicate r8_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 rejected", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("x-goog-api-key: AbCdEfGhIjKlMnOpQrSt", "AbCdEfGhIjKlMnOpQrSt"),
    ("slack xoxb-123456789012-abcdefghijkl rejected", "abcdefghijkl"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS)
def test_common_credential_shapes_are_removed(text: str, secret: str) -> None:
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "Rate limit reached for gpt-4o: 10000 tokens per min",
        "token limit exceeded: 128000 tokens",
        "circuit open for openai/gpt-4o@http://127.0.0.1:8000/v1",
        "see https://platform.openai.com/docs/guides/rate-limits?context=tier-free",
        "model vertex_ai/claude-3@20240229 overloaded",
        "the key is missing from the request",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redacted_text_keeps_its_shape() -> None:
    assert redact("Authorization: Token abc123def456") == "Authorization: [REDACTED]"
    assert redact("GET https://gw.example/v1?x=1&key=abcd1234efgh&y=2") == (
        "GET https://gw.example/v1?x=1&key=[REDACTED]&y=2"
    )
    assert (
        redact("to http://alice:pw123456@10.0.0.1:8000/v1 refused") == "to http://[REDACTED]@10.0.0.1:8000/v1 refused"
    )
