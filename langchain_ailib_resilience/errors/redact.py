"""Remove credentials from text before it reaches an error message, a log line or an event.

Three kinds of rule: a credential's *place* (an ``Authorization`` header's whole value, a ``key=``/``token=``
field or query parameter, a URL's userinfo), whatever the credential looks like; and the *shapes* of keys that
are recognisable anywhere (``sk-...``, ``hf_...``, ``AIza...``, ``AKIA...``, ``ghp_...``, JWTs...).
"""

from __future__ import annotations

import re

# Names of fields and query parameters that hold a credential.
_FIELDS = (
    r"api[_-]?key|x-api-key|x-goog-api-key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|secret[_-]?key|"
    r"aws_secret_access_key|aws_session_token|client_secret|password|passwd|token"
)

# (pattern, triggers): the pattern can only match text holding one of its (lower-cased) triggers. Most error
# messages hold none, and errors are built on hot paths (an open circuit rejects every call), so a pattern runs
# only when one of its triggers is present.
_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    # An Authorization header's value, scheme and all (Bearer, Basic, Token, Digest, a bare key), to the line's
    # or the quoted string's end.
    (re.compile(r"(?i)([\"']?(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)([^\r\n\"']{4,})"), ("authorization",)),
    # Bearer/Basic tokens outside a header.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), ("bearer", "basic")),
    # Query parameters that carry a credential (?key=, &api-key=, &sig= of a SAS URL, ...).
    (
        re.compile(rf"(?i)([?&](?:{_FIELDS}|key|sig|signature|auth|code)=)([^&#\s\"']+)"),
        ("?", "&"),
    ),
    # key=value / "key": "value" forms of credential-bearing fields.
    (
        re.compile(rf"(?i)([\"']?(?:{_FIELDS})[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}}]{{4,}})"),
        ("key", "token", "secret", "password", "passwd"),
    ),
    # A URL's userinfo (scheme://user:password@host, scheme://token@host).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@?#\"']+)(?=@)"), ("://",)),
    # Well-known key shapes: OpenAI/Anthropic/DeepSeek/OpenRouter (sk-...), Hugging Face, Google API keys and
    # OAuth tokens, AWS access keys, Groq, xAI, GitHub, Replicate, Slack, and JSON Web Tokens.
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{6,}"), ("sk-",)),
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), ("hf_",)),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), ("aiza",)),
    (re.compile(r"\bya29\.[0-9A-Za-z_-]{16,}"), ("ya29.",)),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), ("akia", "asia")),
    (re.compile(r"\bgsk_[A-Za-z0-9]{10,}"), ("gsk_",)),
    (re.compile(r"\bxai-[A-Za-z0-9]{10,}"), ("xai-",)),
    (
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    (re.compile(r"\br8_[A-Za-z0-9]{20,}"), ("r8_",)),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), ("xox",)),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), ("eyj",)),
)

_PATTERNS: tuple[re.Pattern[str], ...] = tuple(pattern for pattern, _ in _RULES)
_TRIGGERS: tuple[str, ...] = tuple(sorted({trigger for _, triggers in _RULES for trigger in triggers}))

REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Return ``text`` with API keys, bearer tokens and credential fields replaced by ``[REDACTED]``."""
    lowered = text.lower()
    present = {trigger for trigger in _TRIGGERS if trigger in lowered}
    if not present:
        return text
    for pattern, triggers in _RULES:
        if present.isdisjoint(triggers):
            continue
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: m.group(1) + " " + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def redact_url(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://[REDACTED]@host``: URLs are shown in messages, reprs and signals.

    A malformed URL (``redis:/:secret@host``) loses everything before its last ``@`` too."""
    if "://" not in url and "@" in url:
        url = f"{REDACTED}@{url.rpartition('@')[2]}"
    return redact(url)
