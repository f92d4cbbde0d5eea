"""redact() removes credentials; its substring precheck never changes what the patterns would do."""

from __future__ import annotations

import sys

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
