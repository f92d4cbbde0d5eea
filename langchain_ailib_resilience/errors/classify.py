"""Turn any provider, SDK or transport exception into a ``ResilienceError`` with an AI-Protocol code.

Why evidence is weighed rather than the exception class trusted: LiteLLM maps the same provider failure to
different classes (Anthropic's 529 arrives as ``InternalServerError(500)``, an OpenAI-compatible 403 as
``APIError(403)``, Bedrock throttling as a 400), and the provider's own words are more precise than any
status. So the decision takes, in order:

1. the provider's *specific* error code or type from the body (``insufficient_quota``, ``overloaded_error``,
   ``RESOURCE_EXHAUSTED``, ``ThrottlingException``), wherever the body is: ``exc.body``, the response, or JSON
   that LiteLLM embedded in the message text;
2. a *diagnostic* exception type (LiteLLM ``ContextWindowExceededError``, timeouts, connection failures,
   cancellation), which is more precise than the status it carries;
3. the provider's own status (LiteLLM ``provider_status_code``), then the HTTP status;
4. a generic exception type (``openai.RateLimitError`` without a status), then a generic body code
   (``invalid_request_error``, ``INVALID_ARGUMENT``);
5. message patterns, which may only *refine* a code decided from a status or a generic code or type, along
   the transitions in ``provider_tables.ALLOWED_REFINEMENTS`` (a 400 saying "prompt is too long" is E1005; a
   429 saying "exceeded your current quota" is E2002; "billing" inside a URL is ignored).

All mapping facts live in ``provider_tables``. Nothing here imports LiteLLM or an SDK: classes are recognised
by their top-level package and name, attributes are read defensively, and ``classify_error`` never raises.

Cancellation (``asyncio.CancelledError``, ``KeyboardInterrupt``, ``SystemExit``) is *reported* as E4002 so
that it can be logged uniformly; callers must still re-raise the original: it is never retried, never counted
as a provider failure, and never swallowed.
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import provider_tables as tables
from ._cause import safe_cause
from .codes import StandardErrorCode
from .exceptions import ProviderConnectionError, ResilienceError
from .redact import redact
from .retry_after import HeadersLike, headers_of, normalize_headers, parse_retry_after

__all__ = ["classify_error", "classify_http"]

C = StandardErrorCode

_MAX_DEPTH = 4  # wrapped exceptions followed (MidStreamFallbackError, __cause__, tenacity RetryError)
_MAX_MESSAGE = 2000  # characters of the original message kept in the normalised error
_MAX_SCAN = 20_000  # characters of text searched for embedded JSON
_MAX_JSON_ATTEMPTS = 12

# Programming errors: their text ("'NoneType' object has no attribute 'timeout'") must not be read as a
# provider's words. Typed evidence (an embedded provider body, a listed class) still counts.
_NO_PROSE: tuple[type[BaseException], ...] = (
    TypeError,
    AttributeError,
    LookupError,
    NameError,
    AssertionError,
    NotImplementedError,
    ImportError,
    SyntaxError,
    RecursionError,
    ArithmeticError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,  # a local file's permissions, not a provider's verdict
)

_TYPE_ROOTS_PROVIDER = {
    "anthropic": "anthropic",
    "google": "gemini",
    "botocore": "bedrock",
    "openai": "openai",
}


@dataclass
class _Evidence:
    """Everything known about one failure, gathered before any decision is taken."""

    provider: str | None = None  # table key used for lookups
    codes: list[str] = field(default_factory=list)  # provider codes/types, most specific first
    body_statuses: list[int] = field(default_factory=list)
    status: int | None = None
    provider_status: int | None = None
    type_code: tuple[StandardErrorCode, bool] | None = None
    messages: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    google: bool = False
    prose: bool = True  # whether message patterns may decide

    @property
    def text(self) -> str:
        return " | ".join([*self.messages, *self.details])[: _MAX_SCAN * 2]

    @property
    def any_status(self) -> int | None:
        """The provider's own status (LiteLLM's ``provider_status_code``, the body's), else the HTTP one."""
        if self.provider_status is not None:
            return self.provider_status
        if self.body_statuses:
            return self.body_statuses[0]
        return self.status


# --- small, never-raising readers ---------------------------------------------------------------------------


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        try:
            return repr(obj)
        except Exception:
            return f"<{type(obj).__name__}>"


def _http_status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if 100 <= number <= 599 else None
    return None


def _type_root(cls: type) -> str:
    root = (cls.__module__ or "").split(".", 1)[0]
    return tables.TYPE_ROOT_ALIASES.get(root, root)


def _mro_names(exc: BaseException) -> set[tuple[str, str]]:
    return {(_type_root(cls), cls.__name__) for cls in type(exc).__mro__}


# --- bodies -------------------------------------------------------------------------------------------------


def _balanced(text: str, start: int) -> str | None:
    """The ``{...}`` starting at ``start``, honouring quoted strings; ``None`` if unbalanced."""
    depth = 0
    quote: str | None = None
    escaped = False
    for index in range(start, min(len(text), start + _MAX_SCAN)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


def _json_in_text(text: str) -> list[Any]:
    """JSON (or Python-repr) objects embedded in a message: LiteLLM puts the provider's body there."""
    found: list[Any] = []
    text = text[:_MAX_SCAN]
    decoder = json.JSONDecoder()
    index = text.find("{")
    attempts = 0
    while index != -1 and attempts < _MAX_JSON_ATTEMPTS:
        attempts += 1
        end = index + 1
        try:
            value, end = decoder.raw_decode(text, index)
        except (ValueError, RecursionError):  # RecursionError: a hostile body nested past the parser's depth
            value = None
            chunk = _balanced(text, index)
            if chunk is not None and "'" in chunk:
                try:
                    value = ast.literal_eval(chunk)
                    end = index + len(chunk)
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    value = None
        if isinstance(value, dict):
            found.append(value)
            index = text.find("{", end)
        else:
            index = text.find("{", index + 1)
    return found


def _parse_body(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        stripped = body.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except (ValueError, RecursionError):  # a body nested past the parser's depth decides nothing
                pass
        embedded = _json_in_text(stripped)
        if embedded:
            return embedded[0]
        return stripped or None
    return body


def _add_code(ev: _Evidence, value: Any) -> None:
    """Record a body ``code``/``type``/``status``: an HTTP error status if it is one, else a provider code."""
    status = _http_status(value)
    if status is not None:
        if status >= 400:  # Google's error.code, Azure's "429"; other small numbers are business codes
            ev.body_statuses.append(status)
        return
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Mistral-style numeric codes ("1300")
    if not isinstance(value, str):
        return
    text = value.strip()
    if "#" in text:  # AWS "__type": "com.amazon.coral.validate#ValidationException"
        text = text.rsplit("#", 1)[-1]
    elif ":" in text and text.split(":", 1)[0].isidentifier():  # "ThrottlingException:http://..."
        text = text.split(":", 1)[0]
    if text and len(text) <= 100 and text not in ev.codes:
        ev.codes.append(text)


def _add_message(ev: _Evidence, value: Any) -> None:
    if isinstance(value, str) and value.strip() and value not in ev.messages:
        ev.messages.append(value.strip()[:_MAX_SCAN])


def _content_filter_reason(inner: Mapping[str, Any]) -> str | None:
    """Azure's verdict: ``innererror.code`` plus the filtered categories and their severity."""
    for key in ("innererror", "inner_error"):
        verdict = inner.get(key)
        if not isinstance(verdict, Mapping):
            continue
        parts: list[str] = []
        code = verdict.get("code")
        if isinstance(code, str) and code:
            parts.append(code)
        results = verdict.get("content_filter_result") or verdict.get("content_filter_results")
        if isinstance(results, Mapping):
            hits = []
            for category, result in results.items():
                if isinstance(result, Mapping) and result.get("filtered"):
                    severity = result.get("severity")
                    hits.append(f"{category} ({severity})" if isinstance(severity, str) else str(category))
            if hits:
                parts.append("filtered: " + ", ".join(hits))
        if parts:
            return "; ".join(parts)
    return None


def _add_details(ev: _Evidence, details: Any) -> None:
    """Google ``error.details``: ErrorInfo gives a reason, QuotaFailure tells per-minute from per-day."""
    if isinstance(details, Mapping):
        details = [details]
    if not isinstance(details, list | tuple):
        return
    for item in list(details)[:10]:
        if isinstance(item, Mapping):
            kind = _safe_str(item.get("@type", ""))
            reason = item.get("reason")
            if isinstance(reason, str) and reason and kind.endswith("ErrorInfo"):
                ev.reasons.append(reason)
            if "RetryInfo" not in kind:
                try:
                    ev.details.append(json.dumps(item, default=str)[:_MAX_SCAN])
                except (TypeError, ValueError, RecursionError):
                    ev.details.append(_safe_str(item)[:_MAX_SCAN])
        elif item is not None:  # protobuf message objects from google-api-core
            ev.details.append(_safe_str(item)[:_MAX_SCAN])


def _collect_body(ev: _Evidence, body: Any, depth: int = 0) -> None:
    """Pull codes, statuses, messages and reasons out of a provider's error body (any known shape)."""
    if depth > 3 or body is None:
        return
    if isinstance(body, list | tuple):
        for item in list(body)[:3]:
            _collect_body(ev, item, depth + 1)
        return
    if isinstance(body, str):
        _add_message(ev, body)
        return
    if not isinstance(body, Mapping):
        return
    ev.bodies.append(body)
    error = body.get("error")
    if isinstance(error, Mapping):
        for key in ("code", "type", "status"):
            _add_code(ev, error.get(key))
        _add_message(ev, error.get("message"))
        reason = _content_filter_reason(error)
        if reason:
            ev.reasons.append(reason)
        _add_details(ev, error.get("details"))
        if isinstance(error.get("error"), Mapping):
            _collect_body(ev, error, depth + 1)
    elif isinstance(error, str):
        _add_message(ev, error)
    aws = body.get("Error")  # botocore ClientError.response
    if isinstance(aws, Mapping):
        _add_code(ev, aws.get("Code"))
        _add_message(ev, aws.get("Message"))
        metadata = body.get("ResponseMetadata")
        if isinstance(metadata, Mapping):
            _add_code(ev, metadata.get("HTTPStatusCode"))
    for key in (
        "code",
        "type",
        "status",
        "__type",
        "error_code",
        "errorCode",
        "error_type",
        "raw_status_code",
    ):
        _add_code(ev, body.get(key))
    for key in ("message", "Message", "detail", "error_message", "msg"):
        _add_message(ev, body.get(key))
    reason = _content_filter_reason(body)
    if reason:
        ev.reasons.append(reason)
    if "details" in body and not isinstance(error, Mapping):
        _add_details(ev, body.get("details"))
    azure = body.get("azure_error")  # LiteLLM ContentPolicyViolationError.provider_specific_fields
    if isinstance(azure, Mapping):
        _collect_body(ev, {"error": azure}, depth + 1)


def _response_body(response: Any) -> Any:
    """The JSON of an already-read response (httpx, httpx2, requests): never reads or awaits."""
    content = _attr(response, "content")
    if isinstance(content, bytes | bytearray) and content:
        return _parse_body(content)
    return None


# --- gathering ----------------------------------------------------------------------------------------------


def _type_evidence(exc: BaseException) -> tuple[StandardErrorCode, bool] | None:
    """The first *specific* listed class in the MRO, else the most derived listed class."""
    generic: tuple[StandardErrorCode, bool] | None = None
    for cls in type(exc).__mro__:
        hit = tables.TYPE_MAP.get((_type_root(cls), cls.__name__))
        if hit is None:
            continue
        if hit[1]:
            return hit
        if generic is None:
            generic = hit
    return generic


def _grpc_names(exc: BaseException) -> list[str]:
    """gRPC status names from Google errors: ``exc.code().name``, ``exc.grpc_status_code``, ``exc.status``."""
    names: list[str] = []
    candidates: list[Any] = []
    roots = {_type_root(cls) for cls in type(exc).__mro__}
    if "google" in roots:  # grpc.RpcError.code() (grpc is aliased to google); never call other code()s
        code = _attr(exc, "code")
        if callable(code) and not isinstance(code, type):
            with contextlib.suppress(Exception):
                candidates.append(code())
    candidates.append(_attr(exc, "grpc_status_code"))
    candidates.append(_attr(exc, "status"))
    for value in candidates:
        name = value if isinstance(value, str) else _attr(value, "name")
        if isinstance(name, str) and name.upper() in tables.GRPC_STATUS_CODES and name.upper() not in names:
            names.append(name.upper())
    return names


def _exception_status(exc: BaseException) -> int | None:
    for name in ("status_code", "status", "http_status", "code"):
        value = _attr(exc, name)
        status = None if isinstance(value, str) else _http_status(value)
        if status is not None:
            return status
    response = _attr(exc, "response")
    if isinstance(response, Mapping):
        metadata = response.get("ResponseMetadata")
        if isinstance(metadata, Mapping):
            return _http_status(metadata.get("HTTPStatusCode"))
        return None
    if response is not None:
        for name in ("status_code", "status"):
            status = _http_status(_attr(response, name))
            if status is not None:
                return status
    return None


def _str_attr(exc: BaseException, *names: str) -> str | None:
    for name in names:
        value = _attr(exc, name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _gather(exc: BaseException, provider: str | None, model: str | None) -> _Evidence:
    ev = _Evidence()
    roots = {_type_root(cls) for cls in type(exc).__mro__}
    lookup_provider = provider or _str_attr(exc, "llm_provider", "custom_llm_provider")
    if not lookup_provider and model and "/" in model:
        lookup_provider = model
    if not lookup_provider:
        lookup_provider = next((p for r, p in _TYPE_ROOTS_PROVIDER.items() if r in roots), None)
    ev.provider = tables.normalize_provider(lookup_provider)
    ev.google = ev.provider == "gemini" or "google" in roots

    ev.type_code = _type_evidence(exc)
    ev.prose = ev.type_code is not None or not isinstance(exc, _NO_PROSE)
    ev.status = _exception_status(exc)
    provider_status = _attr(exc, "provider_status_code")
    ev.provider_status = _http_status(provider_status) if not isinstance(provider_status, str) else None

    message = _safe_str(exc)
    own_message = _attr(exc, "message")
    bodies: list[Any] = [_attr(exc, "body")]
    response = _attr(exc, "response")
    bodies.append(response if isinstance(response, Mapping) else _response_body(response))
    for name in ("details", "response_json", "provider_specific_fields"):
        value = _attr(exc, name)
        if isinstance(value, Mapping | list):
            bodies.append(value)
    for text in (message, own_message if isinstance(own_message, str) else None):
        if text and "{" in text:
            bodies.extend(_json_in_text(text))
    for body in bodies:
        _collect_body(ev, _parse_body(body))

    for name in _grpc_names(exc):
        if name not in ev.codes:
            ev.codes.append(name)
    if any(code.upper() in tables.GRPC_STATUS_CODES and code.isupper() for code in ev.codes):
        ev.google = True
    if message and message not in ev.messages:
        ev.messages.append(message[:_MAX_SCAN])
    if isinstance(own_message, str) and own_message and own_message not in message:
        ev.messages.append(own_message[:_MAX_SCAN])
    return ev


# --- deciding -----------------------------------------------------------------------------------------------


def _quota_or_rate(text: str, *, google: bool) -> StandardErrorCode:
    """A spent quota (E2002) or a rate limit (E2001)? Per-day beats per-minute beats wording.

    The period is read from the whole text (Google names it in metric ids such as
    ``aiplatform.googleapis.com/..._per_minute``); quota words only outside URLs.
    """
    if tables.PER_DAY.search(text):
        return C.QUOTA_EXHAUSTED
    if tables.PER_MINUTE.search(text):
        return C.RATE_LIMITED
    wording = tables.GOOGLE_QUOTA_WORDING if google else tables.QUOTA_WORDING
    return C.QUOTA_EXHAUSTED if wording.search(tables.URLS.sub(" ", text)) else C.RATE_LIMITED


def _refine(code: StandardErrorCode, ev: _Evidence) -> StandardErrorCode:
    """Let the message sharpen a code decided from a status or a generic code/type (allowed transitions)."""
    targets = tables.ALLOWED_REFINEMENTS.get(code)
    if not targets or (code is C.UNKNOWN and not ev.prose):
        return code
    raw = ev.text
    text = tables.URLS.sub(" ", raw)
    if code is C.RATE_LIMITED:
        quota = _quota_or_rate(raw, google=ev.google)
        if quota is C.QUOTA_EXHAUSTED:
            return quota
    for pattern, target in tables.provider_message_patterns(ev.provider):
        if target not in targets or not pattern.search(text):
            continue
        if target is C.QUOTA_EXHAUSTED:
            if _quota_or_rate(raw, google=ev.google) is C.QUOTA_EXHAUSTED:
                return C.QUOTA_EXHAUSTED
            # Quota words, but a per-minute limit (or Google's "check quota" boilerplate): a rate limit.
            if C.RATE_LIMITED in targets:
                return C.RATE_LIMITED
            continue
        return target
    return code


def _decide(ev: _Evidence) -> tuple[StandardErrorCode, str | None]:
    """The code and the provider code that decided it (or the most specific one seen)."""
    if ev.type_code is not None and ev.type_code == (C.CANCELLED, True):
        return C.CANCELLED, None
    weak: tuple[StandardErrorCode, str] | None = None
    status = ev.any_status
    for candidate in ev.codes:
        mapped = tables.lookup_body_code(ev.provider, candidate)
        if mapped is None:
            continue
        key = candidate.lower()
        if key in tables.QUOTA_OR_RATE_CODES:
            return _quota_or_rate(ev.text, google=True), candidate
        if key in tables.GENERIC_BODY_CODES:
            weak = weak or (mapped, candidate)
            continue
        if status is not None:
            mapped = tables.STATUS_OVERRIDES.get((status, mapped), mapped)
        return mapped, candidate
    provider_code = weak[1] if weak else (ev.codes[0] if ev.codes else None)
    if ev.type_code is not None and ev.type_code[1]:
        return _refine(ev.type_code[0], ev), provider_code
    for value in (ev.any_status, ev.status):
        if value is not None:
            mapped = tables.lookup_status(ev.provider, value)
            if mapped is not None:
                return _refine(mapped, ev), provider_code
    if ev.type_code is not None:
        return _refine(ev.type_code[0], ev), provider_code
    if weak is not None:
        return _refine(weak[0], ev), provider_code
    return _refine(C.UNKNOWN, ev), provider_code


def _retry_after(exc: BaseException | None, ev: _Evidence, headers: HeadersLike | object) -> float | None:
    if exc is not None:
        for name in (
            "cooldown_time",
            "retry_after",
        ):  # LiteLLM Router cooldown; SDKs that parse it themselves
            value = _attr(exc, name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return parse_retry_after(headers, body=ev.bodies or None, message=ev.text)


def _reason(ev: _Evidence, exc: BaseException | None) -> str | None:
    if ev.reasons:
        return "; ".join(dict.fromkeys(ev.reasons))
    if exc is not None and ("langchain_core", "ModelRefusalError") in _mro_names(exc):
        return "refusal"
    return None


def _message_of(exc: BaseException) -> str:
    text = _safe_str(exc).strip()
    name = type(exc).__name__
    if not text:
        return name
    message = text if name in text else f"{name}: {text}"
    return message[:_MAX_MESSAGE]


def _build(
    code: StandardErrorCode,
    message: str,
    *,
    provider_code: str | None,
    ev: _Evidence,
    retry_after: float | None,
    provider: str | None,
    model: str | None,
    reason: str | None,
    connection: bool = False,
) -> ResilienceError:
    status = ev.any_status
    cls = ProviderConnectionError if connection and code is C.SERVER_ERROR else ResilienceError
    return cls(
        message,
        code=code,
        retry_after=retry_after,
        provider=provider,
        model=model,
        status_code=status,
        provider_code=redact(provider_code) if provider_code else None,
        reason=reason,
    )


def _inner_exceptions(exc: BaseException) -> Iterable[BaseException]:
    """What a wrapper carries: LiteLLM's original, tenacity's last attempt, a one-error group, the cause."""
    original = _attr(exc, "original_exception")
    if isinstance(original, BaseException):
        yield original
    last_attempt = _attr(exc, "last_attempt")
    if last_attempt is not None and callable(_attr(last_attempt, "exception")):
        try:
            inner = last_attempt.exception(timeout=0)
        except Exception:
            inner = None
        if isinstance(inner, BaseException):
            yield inner
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        yield exc.exceptions[0]
    if exc.__cause__ is not None:
        yield exc.__cause__


def _classify(exc: BaseException, provider: str | None, model: str | None, depth: int) -> ResilienceError:
    result_provider = provider or _str_attr(exc, "llm_provider", "custom_llm_provider")
    result_model = model or _str_attr(exc, "model")
    names = _mro_names(exc)
    if ("litellm", "MidStreamFallbackError") in names and depth < _MAX_DEPTH:
        original = _attr(exc, "original_exception")
        if isinstance(original, BaseException) and original is not exc:
            inner = _classify(original, result_provider, result_model, depth + 1)
            if inner.code is not C.UNKNOWN:
                return inner
    ev = _gather(exc, provider, model)
    code, provider_code = _decide(ev)
    if code is C.UNKNOWN and depth < _MAX_DEPTH:
        for wrapped in _inner_exceptions(exc):
            if wrapped is exc:
                continue
            inner = _classify(wrapped, result_provider, result_model, depth + 1)
            if inner.code is not C.UNKNOWN:
                return inner
    return _build(
        code,
        _message_of(exc),
        provider_code=provider_code,
        ev=ev,
        retry_after=_retry_after(exc, ev, headers_of(exc)),
        provider=result_provider,
        model=result_model,
        reason=_reason(ev, exc),
        connection=not names.isdisjoint(tables.CONNECTION_TYPES),
    )


def classify_error(exc: BaseException, *, provider: str | None = None, model: str | None = None) -> ResilienceError:
    """Normalise ``exc`` into a ``ResilienceError`` whose ``__cause__`` is ``exc``. Never raises.

    ``exc``'s message, string attributes and notes (and its own chain's) are redacted in place, so a traceback
    of the result prints no credential; see ``errors/_cause.py``.

    A ``ResilienceError`` is returned as is (only a missing ``provider``/``model`` is filled in). ``provider``
    and ``model`` override what the exception says (LiteLLM's ``llm_provider`` and ``model``). For
    ``asyncio.CancelledError``, ``KeyboardInterrupt`` and ``SystemExit`` the result has code E4002 and is for
    reporting only: re-raise the original.
    """
    if not isinstance(exc, BaseException):  # a caller's mistake must not raise from the error path either
        return ResilienceError(
            f"classify_error expects an exception, got {type(exc).__qualname__}: {_safe_str(exc)[:200]}",
            code=C.UNKNOWN,
            provider=provider,
            model=model,
        )
    if isinstance(exc, ResilienceError):
        if exc.provider is None and provider:
            exc.provider = provider
        if exc.model is None and model:
            exc.model = model
        return exc
    try:
        result = _classify(exc, provider, model, 0)
    except Exception:  # the last line of defence: classification must never mask the original failure
        result = ResilienceError(
            _message_of(exc) if not isinstance(exc, RecursionError) else "unclassifiable error",
            code=C.UNKNOWN,
            provider=provider,
            model=model,
        )
    result.__cause__ = safe_cause(exc)  # kept for debugging, but what a traceback prints is redacted
    return result


def classify_http(
    status: int | None,
    body: Any,
    *,
    provider: str | None = None,
    headers: HeadersLike | object = None,
    model: str | None = None,
) -> ResilienceError:
    """Classify a raw HTTP error response: ``status``, its body (dict, JSON text or bytes) and headers.

    Used where there is a response but no exception: the conformance cases, the emulator, transports.
    Never raises.
    """
    try:
        ev = _Evidence(provider=tables.normalize_provider(provider or model))
        ev.google = ev.provider == "gemini"
        ev.status = _http_status(status)
        parsed = _parse_body(body)
        _collect_body(ev, parsed)
        if any(code.upper() in tables.GRPC_STATUS_CODES and code.isupper() for code in ev.codes):
            ev.google = True
        code, provider_code = _decide(ev)
        message = ev.messages[0] if ev.messages else f"HTTP {status}"
        return _build(
            code,
            message[:_MAX_MESSAGE],
            provider_code=provider_code,
            ev=ev,
            retry_after=_retry_after(None, ev, normalize_headers(headers)),
            provider=provider,
            model=model,
            reason=_reason(ev, None),
        )
    except Exception:
        return ResilienceError(f"HTTP {status}", code=C.UNKNOWN, provider=provider, model=model)
