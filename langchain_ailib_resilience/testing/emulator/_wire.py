"""Wire formats of the emulated providers: success bodies, stream events and error responses.

Kept apart from the server so the provider-specific text (which is what LiteLLM and the error classifier
actually parse) can be read and checked in one place. Bodies follow each provider's documented format:
OpenAI ``{"error": {"message", "type", "param", "code"}}``, Anthropic ``{"type": "error", "error": {"type",
"message"}}`` and Gemini ``{"error": {"code", "message", "status", "details"}}``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "ErrorKind",
    "FaultResponse",
    "ProviderFormat",
    "StreamEvent",
    "ToolCall",
    "error_response",
    "format_seconds",
    "malformed_event",
    "split_text",
    "stream_error_event",
    "stream_events",
    "success_body",
]

ProviderFormat = Literal["openai", "anthropic", "gemini"]
ErrorKind = Literal["rate_limit", "quota", "server_error", "overloaded", "context_length", "content_filter", "auth"]

_GOOGLE_TYPE = "type.googleapis.com/google.rpc."


@dataclass(frozen=True, slots=True)
class FaultResponse:
    """The answer to a fault: status, headers and a JSON body (an HTTP error, except Gemini's safety block)."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call in an answer: the tool's ``name`` and its ``arguments`` (``id`` generated when empty)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event; ``content`` marks the events that carry generated text (the "chunks")."""

    data: bytes
    content: bool = False


def format_seconds(seconds: float) -> str:
    """``2`` for whole seconds, ``0.25`` otherwise: fractional waits keep fast tests fast.

    RFC 9110 only allows whole seconds in Retry-After, but the OpenAI SDK, LiteLLM and this package all parse
    decimals, and rounding 30 ms up to a second would slow every soak test down.
    """
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _go_duration(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{format_seconds(round(seconds, 3))}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{format_seconds(round(rest, 3))}s"


def _rfc3339_after(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def split_text(text: str) -> list[str]:
    """Stream pieces of ``text``: one per word, the following whitespace kept, so joining gives it back."""
    pieces = re.findall(r"\s*\S+\s*", text)
    return pieces or [text]


# --- success -------------------------------------------------------------------------------------------------


def success_body(
    provider: ProviderFormat,
    model: str,
    text: str,
    prompt_tokens: int,
    completion_tokens: int,
    request_id: str,
    tool_calls: Sequence[ToolCall] = (),
) -> dict[str, Any]:
    """A complete non-streamed answer carrying ``text`` (or ``tool_calls``) and the given usage."""
    if provider == "openai":
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if tool_calls:
            message["content"] = text or None
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
                }
                for call in tool_calls
            ]
        return {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_emulator",
        }
    if provider == "anthropic":
        return {
            "id": f"msg_{request_id}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [
                *([{"type": "text", "text": text}] if text or not tool_calls else []),
                *(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
                    for call in tool_calls
                ),
            ],
            "stop_reason": "tool_use" if tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        }
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": _gemini_usage(prompt_tokens, completion_tokens),
        "modelVersion": model,
        "responseId": request_id,
    }


def _gemini_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": completion_tokens,
        "totalTokenCount": prompt_tokens + completion_tokens,
    }


def _sse(data: Mapping[str, Any], event: str | None = None, *, content: bool = False) -> StreamEvent:
    prefix = f"event: {event}\n" if event else ""
    return StreamEvent(f"{prefix}data: {json.dumps(data)}\n\n".encode(), content)


def stream_events(
    provider: ProviderFormat,
    model: str,
    chunks: Sequence[str],
    prompt_tokens: int,
    completion_tokens: int,
    request_id: str,
    *,
    include_usage: bool = False,
    tool_calls: Sequence[ToolCall] = (),
) -> list[StreamEvent]:
    """The full event sequence of a streamed answer, as the provider sends it (framing events included).

    Tool calls follow the text: each one's arguments stream as JSON pieces (content events, like text chunks).
    """
    if provider == "openai":
        base: dict[str, Any] = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_emulator",
        }

        def choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        first: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else "", "refusal": None}
        events = [_sse(choice(first, None))]
        events += [_sse(choice({"content": piece}, None), content=True) for piece in chunks if piece or not tool_calls]
        for index, call in enumerate(tool_calls):
            head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            events.append(_sse(choice({"tool_calls": [head]}, None)))
            events += [
                _sse(choice({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None), content=True)
                for piece in _json_pieces(call.arguments)
            ]
        events.append(_sse(choice({}, "tool_calls" if tool_calls else "stop")))
        if include_usage:
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(StreamEvent(b"data: [DONE]\n\n"))
        return events
    if provider == "anthropic":
        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_{request_id}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
            },
        }
        events = [_sse(start, "message_start"), _sse({"type": "ping"}, "ping")]
        block = 0
        if any(chunks) or not tool_calls:
            events.append(
                _sse(
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                    "content_block_start",
                )
            )
            events += [
                _sse(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                    "content_block_delta",
                    content=True,
                )
                for piece in chunks
            ]
            events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            block = 1
        for index, call in enumerate(tool_calls, start=block):
            tool_block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            events.append(
                _sse(
                    {"type": "content_block_start", "index": index, "content_block": tool_block}, "content_block_start"
                )
            )
            events += [
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                    "content_block_delta",
                    content=True,
                )
                for piece in _json_pieces(call.arguments)
            ]
            events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        events += [
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use" if tool_calls else "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": completion_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return events
    events = []
    for index, piece in enumerate(chunks):
        last = index == len(chunks) - 1
        candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        done = completion_tokens if last else index + 1
        body = {
            "candidates": [candidate],
            "usageMetadata": _gemini_usage(prompt_tokens, done),
            "modelVersion": model,
            "responseId": request_id,
        }
        events.append(_sse(body, content=True))
    return events


def _json_pieces(arguments: Mapping[str, Any]) -> list[str]:
    """Tool arguments as JSON in a few pieces, as providers stream them (``'{"a": '``, ``'1}'``)."""
    text = json.dumps(dict(arguments))
    size = max(1, len(text) // 3 + 1)
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- errors --------------------------------------------------------------------------------------------------


def _openai_error(
    status: int, message: str, type_: str | None, code: str | None, param: str | None = None
) -> FaultResponse:
    return FaultResponse(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def _anthropic_error(status: int, type_: str, message: str, request_id: str) -> FaultResponse:
    return FaultResponse(
        status,
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": f"req_{request_id}"},
    )


def _gemini_error(status: int, grpc: str, message: str, details: Sequence[Mapping[str, Any]] = ()) -> FaultResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc}
    if details:
        error["details"] = list(details)
    return FaultResponse(status, {"error": error})


def _retry_info(seconds: float) -> dict[str, str]:
    return {"@type": f"{_GOOGLE_TYPE}RetryInfo", "retryDelay": f"{format_seconds(seconds)}s"}


_SERVER_MESSAGES: Mapping[int, str] = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
    504: "Gateway timeout.",
    529: "The server is overloaded.",
}


def _server_error(provider: ProviderFormat, status: int, request_id: str) -> FaultResponse:
    message = _SERVER_MESSAGES.get(status, f"Server error {status}.")
    if provider == "openai":
        return _openai_error(status, message, "server_error", None)
    if provider == "anthropic":
        if status == 529:
            return _anthropic_error(529, "overloaded_error", "Overloaded", request_id)
        if status == 504:
            return _anthropic_error(504, "timeout_error", "Request timed out", request_id)
        return _anthropic_error(status, "api_error", "Internal server error", request_id)
    if status in (503, 529):
        return _gemini_error(status, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if status == 504:
        return _gemini_error(status, "DEADLINE_EXCEEDED", "The request timed out. Please try again.")
    return _gemini_error(status, "INTERNAL", "An internal error has occurred. Please retry or report the issue.")


def _rate_limit_headers(provider: ProviderFormat, retry_after: float, limit: int) -> dict[str, str]:
    """Retry-After plus the provider's own rate-limit headers, all saying "wait ``retry_after`` seconds"."""
    if provider == "openai":
        return {
            "retry-after": format_seconds(retry_after),
            "retry-after-ms": str(round(retry_after * 1000)),
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": _go_duration(retry_after),
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149990",
            "x-ratelimit-reset-tokens": "4ms",
        }
    if provider == "anthropic":
        reset = _rfc3339_after(retry_after)
        return {
            "retry-after": format_seconds(retry_after),
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": "80000",
            "anthropic-ratelimit-tokens-remaining": "79990",
            "anthropic-ratelimit-tokens-reset": _rfc3339_after(0),
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "39990",
            "anthropic-ratelimit-input-tokens-reset": _rfc3339_after(0),
            "anthropic-ratelimit-output-tokens-limit": "40000",
            "anthropic-ratelimit-output-tokens-remaining": "40000",
            "anthropic-ratelimit-output-tokens-reset": _rfc3339_after(0),
        }
    return {}  # Gemini says it only in the body (RetryInfo)


def error_response(
    provider: ProviderFormat,
    kind: ErrorKind,
    model: str,
    request_id: str,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    limit: int = 60,
    dimension: str = "requests",
    rate_headers: Mapping[str, str] | None = None,
) -> FaultResponse:
    """The provider's answer for a fault ``kind`` (``status`` only matters for ``server_error``).

    ``retry_after`` (seconds) is announced the provider's way: headers for OpenAI and Anthropic, a RetryInfo
    detail for Gemini. ``limit`` is the per-minute limit of ``dimension`` (``requests``, ``tokens``,
    ``input_tokens``...) the messages and the default rate-limit headers report; ``rate_headers`` replaces
    those headers (a model with configured limits states its real ones).
    """
    if kind == "rate_limit":
        wait = 1.0 if retry_after is None else retry_after
        if provider == "openai":
            unit = "requests per min (RPM)" if dimension == "requests" else "tokens per min (TPM)"
            answer = _openai_error(
                429,
                f"Rate limit reached for {model} in organization org-emulator on {unit}: "
                f"Limit {limit}, Used {limit}, Requested 1. Please try again in {format_seconds(wait)}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more.",
                "requests" if dimension == "requests" else "tokens",
                "rate_limit_exceeded",
            )
        elif provider == "anthropic":
            answer = _anthropic_error(
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of "
                f"{limit} {dimension.replace('_', ' ')} per minute. For details, refer to: "
                "https://docs.claude.com/en/api/rate-limits. You can see the response headers for current "
                "usage. Please reduce the prompt length or the maximum tokens requested, or try again later.",
                request_id,
            )
        else:
            answer = _gemini_error(
                429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [_retry_info(wait)]
            )
        headers = _rate_limit_headers(provider, wait, limit) if rate_headers is None else dict(rate_headers)
        return FaultResponse(answer.status, answer.body, headers)
    if kind == "quota":
        if provider == "openai":
            return _openai_error(
                429,
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            )
        if provider == "anthropic":
            return _anthropic_error(
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                "upgrade or purchase credits.",
                request_id,
            )
        details: list[Mapping[str, Any]] = [
            {
                "@type": f"{_GOOGLE_TYPE}QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "250",
                    }
                ],
            },
            {
                "@type": f"{_GOOGLE_TYPE}Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if retry_after is not None:
            details.append(_retry_info(retry_after))
        return _gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. For more information "
            "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            details,
        )
    if kind == "server_error":
        answer = _server_error(provider, status or 500, request_id)
        if retry_after is None:
            return answer
        return FaultResponse(answer.status, answer.body, {"retry-after": format_seconds(retry_after)})
    if kind == "overloaded":
        answer = _server_error(provider, 529 if provider == "anthropic" else 503, request_id)
        if provider == "openai":
            answer = _openai_error(
                503, "The engine is currently overloaded, please try again later.", "server_error", None
            )
        if retry_after is None:
            return answer
        return FaultResponse(answer.status, answer.body, {"retry-after": format_seconds(retry_after)})
    if kind == "context_length":
        if provider == "openai":
            return _openai_error(
                400,
                "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                "130000 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
        if provider == "anthropic":
            return _anthropic_error(
                400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", request_id
            )
        return _gemini_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        )
    if kind == "content_filter":
        if provider == "openai":  # Azure OpenAI's content management policy
            body = {
                "error": {
                    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                    "management policy. Please modify your prompt and retry. To learn more about our content "
                    "filtering policies please read our documentation: "
                    "https://go.microsoft.com/fwlink/?linkid=2198766",
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            "hate": {"filtered": False, "severity": "safe"},
                            "self_harm": {"filtered": False, "severity": "safe"},
                            "sexual": {"filtered": False, "severity": "safe"},
                            "violence": {"filtered": True, "severity": "high"},
                        },
                    },
                }
            }
            return FaultResponse(400, body)
        if provider == "anthropic":
            return _anthropic_error(
                400, "invalid_request_error", "Output blocked by content filtering policy", request_id
            )
        # Gemini does not fail a blocked prompt: it answers 200 with promptFeedback.blockReason and no
        # candidates (LiteLLM turns that into finish_reason "content_filter" with no content).
        return FaultResponse(
            200,
            {
                "promptFeedback": {
                    "blockReason": "SAFETY",
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                    ],
                },
                "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
                "modelVersion": model,
            },
        )
    # auth
    if provider == "openai":
        return _openai_error(
            401,
            "Incorrect API key provided: sk-emu***********. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if provider == "anthropic":
        return _anthropic_error(401, "authentication_error", "invalid x-api-key", request_id)
    # Gemini answers a bad API key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID, not with a 401.
    return _gemini_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": f"{_GOOGLE_TYPE}ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def malformed_event(provider: ProviderFormat) -> StreamEvent:
    """A content event whose JSON is cut off, in the provider's framing."""
    if provider == "openai":
        return StreamEvent(
            b'data: {"id": "chatcmpl-emu", "object": "chat.completion.chunk", "choices": [{"de\n\n', True
        )
    if provider == "anthropic":
        return StreamEvent(
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n', True
        )
    return StreamEvent(b'data: {"candidates": [{"content": {"parts": [{"te\n\n', True)


def stream_error_event(provider: ProviderFormat, error: FaultResponse) -> StreamEvent:
    """The event a provider sends when a stream fails after it has started (HTTP status already 200)."""
    if error.status < 400:  # Gemini's safety block: the same body as an event
        return _sse(error.body, content=True)
    if provider == "anthropic":
        body = {"type": "error", "error": dict(error.body.get("error", {}))}
        return _sse(body, "error")
    return _sse(error.body)


PREFIXES = ("openai/", "anthropic/", "gemini/", "azure/")
GEMINI_PATH = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$")
AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
MALFORMED_BODY = b'{"id": "chatcmpl-emu", "object": "chat.completion", "choices": [{"index": 0, "message": {"role'


@dataclass(frozen=True, slots=True)
class Route:
    provider: ProviderFormat
    model: str
    stream: bool
    body: Mapping[str, Any]
    path: str


def model_key(model: str | None) -> str | None:
    if model is None:
        return None
    for prefix in PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def route_of(path: str, raw: bytes) -> Route | None:
    parts = urlsplit(path)
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        parsed = {}
    body: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
    stream = body.get("stream") is True
    if parts.path in ("/v1/chat/completions", "/chat/completions"):
        return Route("openai", str(body.get("model", "")), stream, body, parts.path)
    if match := AZURE_PATH.match(parts.path):
        return Route("openai", match.group(1), stream, body, parts.path)
    if parts.path in ("/v1/messages", "/messages"):
        return Route("anthropic", str(body.get("model", "")), stream, body, parts.path)
    if match := GEMINI_PATH.match(parts.path):
        streaming = match.group(2) == "streamGenerateContent"
        return Route("gemini", match.group(1), streaming, body, parts.path)
    return None


def include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def request_id_header(provider: ProviderFormat) -> str:
    return {"openai": "x-request-id", "anthropic": "request-id", "gemini": "x-goog-request-id"}[provider]


def status_of(kind: str, answer: FaultResponse | None) -> int | None:
    if answer is not None:
        return answer.status
    if kind in ("hang", "reset"):
        return None
    return 200  # success, malformed, and streams that fail after their 200
