"""Remove credentials from text before it reaches an error message, a log line or an event."""

from __future__ import annotations

import re

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization headers and bearer tokens, whatever the token looks like.
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"),
    # key=value / "key": "value" forms of credential-bearing fields.
    re.compile(
        r"(?i)([\"']?(?:api[_-]?key|x-api-key|api-key|authorization|access[_-]?token|secret[_-]?key|"
        r"aws_secret_access_key|client_secret|password|token)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{4,})"
    ),
    # Well-known key shapes: OpenAI/Anthropic/DeepSeek (sk-...), Google (AIza...), AWS access keys, Groq, xAI.
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{6,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bgsk_[A-Za-z0-9]{10,}"),
    re.compile(r"\bxai-[A-Za-z0-9]{10,}"),
)

REDACTED = "[REDACTED]"


# Every pattern above needs one of these (lower-cased) in the text; most error messages have none, and errors are
# built on hot paths (an open circuit rejects every call), so the regexes run only when one is present.
_TRIGGERS = (
    "sk-",
    "bearer",
    "basic",
    "key",
    "token",
    "authorization",
    "secret",
    "password",
    "aiza",
    "akia",
    "asia",
    "gsk_",
    "xai-",
)


def redact(text: str) -> str:
    """Return ``text`` with API keys, bearer tokens and credential fields replaced by ``[REDACTED]``."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    for pattern in _PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: m.group(1) + " " + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text
