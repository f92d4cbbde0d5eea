"""Provider error-mapping tables, kept as data in one place.

``classify.py`` holds the *logic* (which evidence wins); this module holds the *facts* (what each provider's
codes, statuses and messages mean). A new provider or a newly observed error code should only touch this file.

Sources: the AI-Protocol V2 ``error-codes.yaml`` provider mappings, the providers' published error references,
and what LiteLLM 1.110 was observed to raise against a local server (see ``docs/ecosystem-notes.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .codes import StandardErrorCode

C = StandardErrorCode

__all__ = [
    "ALLOWED_REFINEMENTS",
    "ALL_CODES",
    "AWS_ERROR_CODES",
    "CONNECTION_TYPES",
    "DEFAULT_TABLE",
    "GENERIC_BODY_CODES",
    "GOOGLE_QUOTA_WORDING",
    "GRPC_STATUS_CODES",
    "MESSAGE_PATTERNS",
    "PER_DAY",
    "PER_MINUTE",
    "PROVIDER_ALIASES",
    "PROVIDER_TABLES",
    "QUOTA_OR_RATE_CODES",
    "QUOTA_WORDING",
    "STATUS_OVERRIDES",
    "TYPE_MAP",
    "TYPE_ROOT_ALIASES",
    "URLS",
    "ProviderTable",
    "lookup_body_code",
    "lookup_status",
    "normalize_provider",
    "provider_message_patterns",
]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ProviderTable:
    """One provider's mappings. Keys of ``body_codes`` are matched case-insensitively."""

    body_codes: Mapping[str, StandardErrorCode] = field(default_factory=dict)
    statuses: Mapping[int, StandardErrorCode] = field(default_factory=dict)
    messages: tuple[tuple[re.Pattern[str], StandardErrorCode], ...] = ()


# --- Google gRPC status names (Gemini, Vertex AI, google-api-core, grpc) ------------------------------------

GRPC_STATUS_CODES: Final[Mapping[str, StandardErrorCode]] = {
    "INVALID_ARGUMENT": C.INVALID_REQUEST,
    "FAILED_PRECONDITION": C.INVALID_REQUEST,
    "OUT_OF_RANGE": C.INVALID_REQUEST,
    "UNAUTHENTICATED": C.AUTHENTICATION,
    "PERMISSION_DENIED": C.PERMISSION_DENIED,
    "NOT_FOUND": C.NOT_FOUND,
    "UNIMPLEMENTED": C.NOT_FOUND,
    "RESOURCE_EXHAUSTED": C.RATE_LIMITED,  # or quota: see QUOTA_OR_RATE_CODES
    "INTERNAL": C.SERVER_ERROR,
    "DATA_LOSS": C.SERVER_ERROR,
    "UNAVAILABLE": C.OVERLOADED,
    "DEADLINE_EXCEEDED": C.TIMEOUT,
    "ABORTED": C.CONFLICT,
    "ALREADY_EXISTS": C.CONFLICT,
    "CANCELLED": C.CANCELLED,
    "UNKNOWN": C.UNKNOWN,
}

# --- AWS error codes (Bedrock runtime and the AWS JSON protocol) --------------------------------------------

AWS_ERROR_CODES: Final[Mapping[str, StandardErrorCode]] = {
    "ThrottlingException": C.RATE_LIMITED,
    "Throttling": C.RATE_LIMITED,
    "TooManyRequestsException": C.RATE_LIMITED,
    "RequestLimitExceeded": C.RATE_LIMITED,
    "ServiceQuotaExceededException": C.QUOTA_EXHAUSTED,
    "ServiceUnavailableException": C.OVERLOADED,
    "ServiceUnavailable": C.OVERLOADED,
    "ModelNotReadyException": C.OVERLOADED,  # the AWS SDKs retry it: the model is being loaded
    "ModelTimeoutException": C.TIMEOUT,
    "RequestTimeout": C.TIMEOUT,
    "RequestTimeoutException": C.TIMEOUT,
    "ValidationException": C.INVALID_REQUEST,
    "SerializationException": C.INVALID_REQUEST,
    "AccessDeniedException": C.PERMISSION_DENIED,
    "UnrecognizedClientException": C.AUTHENTICATION,
    "InvalidSignatureException": C.AUTHENTICATION,
    "IncompleteSignature": C.AUTHENTICATION,
    "ExpiredTokenException": C.AUTHENTICATION,
    "MissingAuthenticationToken": C.AUTHENTICATION,
    "ResourceNotFoundException": C.NOT_FOUND,
    "InternalServerException": C.SERVER_ERROR,
    "InternalFailure": C.SERVER_ERROR,
    "ModelErrorException": C.SERVER_ERROR,
    "ModelStreamErrorException": C.SERVER_ERROR,
    "ConflictException": C.CONFLICT,
}

# --- Codes shared by many providers (OpenAI-style bodies and the spec's own error names) --------------------

_COMMON_BODY_CODES: Final[Mapping[str, StandardErrorCode]] = {
    # OpenAI and OpenAI-compatible APIs (Azure, DeepSeek, Groq, Together, vLLM, ...).
    "invalid_request_error": C.INVALID_REQUEST,
    "invalid_api_key": C.AUTHENTICATION,
    "authentication_error": C.AUTHENTICATION,
    "permission_error": C.PERMISSION_DENIED,
    "permission_denied": C.PERMISSION_DENIED,
    "unsupported_country_region_territory": C.PERMISSION_DENIED,
    "model_not_found": C.NOT_FOUND,
    "not_found_error": C.NOT_FOUND,
    "context_length_exceeded": C.REQUEST_TOO_LARGE,
    "string_above_max_length": C.REQUEST_TOO_LARGE,
    "request_too_large": C.REQUEST_TOO_LARGE,
    "rate_limit_exceeded": C.RATE_LIMITED,
    "rate_limit_error": C.RATE_LIMITED,
    "rate_limit_reached": C.RATE_LIMITED,
    "insufficient_quota": C.QUOTA_EXHAUSTED,
    "billing_hard_limit_reached": C.QUOTA_EXHAUSTED,
    "billing_not_active": C.QUOTA_EXHAUSTED,
    "billing_error": C.QUOTA_EXHAUSTED,
    "insufficient_balance": C.QUOTA_EXHAUSTED,
    "payment_required": C.QUOTA_EXHAUSTED,
    "server_error": C.SERVER_ERROR,
    "api_error": C.SERVER_ERROR,
    "internal_server_error": C.SERVER_ERROR,
    "internal_error": C.SERVER_ERROR,
    "overloaded": C.OVERLOADED,
    "overloaded_error": C.OVERLOADED,
    "service_unavailable": C.OVERLOADED,
    "engine_overloaded": C.OVERLOADED,
    "timeout": C.TIMEOUT,
    "timeout_error": C.TIMEOUT,
    "request_timeout": C.TIMEOUT,
    "content_filter": C.INVALID_REQUEST,
    "content_policy_violation": C.INVALID_REQUEST,
    "invalid_prompt": C.INVALID_REQUEST,
    # The spec's own error names, as an emulator or a proxy speaking AI-Protocol would send them.
    "invalid_request": C.INVALID_REQUEST,
    "authentication": C.AUTHENTICATION,
    "rate_limited": C.RATE_LIMITED,
    "quota_exhausted": C.QUOTA_EXHAUSTED,
    "conflict": C.CONFLICT,
    "cancelled": C.CANCELLED,
}

GENERIC_BODY_CODES: Final[frozenset[str]] = frozenset(
    code.lower()
    for code in (
        # Categories, not diagnoses: more specific evidence (HTTP status, a precise exception type, the
        # message) decides. Anthropic sends "invalid_request_error" for a too-long prompt and for an empty
        # credit balance; Gemini sends INVALID_ARGUMENT for a bad API key; a 503 may carry "server_error".
        "invalid_request_error",
        "invalid_request",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "ValidationException",
        "SerializationException",
        "server_error",
        "api_error",
        "internal_server_error",
        "internal_error",
        "INTERNAL",
        "InternalServerException",
        "InternalFailure",
        "UNKNOWN",
        "unknown_error",
        "error",
    )
)
"""Body codes that name a broad category; they decide only when nothing more precise is known."""

QUOTA_OR_RATE_CODES: Final[frozenset[str]] = frozenset({"resource_exhausted"})
"""Body codes that mean either a rate limit or a spent quota; the message and details decide (Google)."""

# --- HTTP statuses ------------------------------------------------------------------------------------------

_DEFAULT_STATUSES: Final[Mapping[int, StandardErrorCode]] = {
    400: C.INVALID_REQUEST,
    401: C.AUTHENTICATION,
    402: C.QUOTA_EXHAUSTED,
    403: C.PERMISSION_DENIED,
    404: C.NOT_FOUND,
    408: C.TIMEOUT,
    409: C.CONFLICT,
    413: C.REQUEST_TOO_LARGE,
    422: C.INVALID_REQUEST,
    424: C.SERVER_ERROR,  # Bedrock ModelErrorException: the model failed
    429: C.RATE_LIMITED,  # or quota: the body or message decides
    499: C.CANCELLED,  # client closed request
    500: C.SERVER_ERROR,
    502: C.SERVER_ERROR,
    503: C.OVERLOADED,
    504: C.TIMEOUT,
    520: C.SERVER_ERROR,
    521: C.SERVER_ERROR,
    522: C.TIMEOUT,
    523: C.SERVER_ERROR,
    524: C.TIMEOUT,
    529: C.OVERLOADED,  # Anthropic overloaded_error
}

STATUS_OVERRIDES: Final[Mapping[tuple[int, StandardErrorCode], StandardErrorCode]] = {
    # Groq answers 413 with code "rate_limit_exceeded" when one request is bigger than the per-minute token
    # budget: no amount of waiting lets that request through, so it is "too large", not "rate limited".
    (413, C.RATE_LIMITED): C.REQUEST_TOO_LARGE,
}
"""(HTTP status, code from the body) pairs where the status knows better than the body."""

# --- Message patterns ---------------------------------------------------------------------------------------

URLS: Final = _rx(
    r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+(?:com|ai|io|net|org|dev|cloud|co|ms)/\S*",
)
"""Stripped before matching words: "billing" or "quota" inside a help link is no evidence of a spent quota."""

PER_MINUTE: Final = _rx(
    r"per[ _-]?min(?:ute)?\b|perminute|per[ _-]?second|persecond|\b(?:RPM|TPM|RPS|ITPM|OTPM)\b|"
    r"/\s*min(?:ute)?\b"
)
"""A limit that resets within a minute is a rate limit, whatever the message calls it."""

PER_DAY: Final = _rx(r"per[ _-]?day|perday|\bdaily\b|\bRPD\b|\bTPD\b|per[ _-]?month|permonth|/\s*month\b|monthly")
"""A limit that resets after a day or more is, for a running program, a spent quota."""

QUOTA_WORDING: Final = _rx(
    r"\bquota\b|\bbilling\b|credit balance|insufficient (?:balance|credits?|funds|quota)|out of credits|"
    r"payment required|spending limit|hard limit|budget (?:has been )?exceeded|exceeded your current quota|"
    # Anthropic's spend cap: 400 "You have reached your specified API usage limits. You will regain access on ..."
    r"(?:specified|api|monthly|workspace) usage limits?|regain access on"
)
"""Words that say the account has run out, not that it is going too fast."""

GOOGLE_QUOTA_WORDING: Final = _rx(r"quota exceeded|exceeded your current quota|\bbilling\b|per[ _-]?day|perday")
"""Google says "Resource has been exhausted (e.g. check quota)" for transient limits too."""

_CONTEXT = _rx(
    r"context[ _]length|context[ _]window|maximum context|prompt is too long|input is too long|"
    r"input too long|too many input tokens|reduce the length of the messages|"
    r"exceeds? the (?:maximum|max) (?:number of )?tokens|"
    r"maximum (?:prompt|input) length|request too large|payload too large|request entity too large|"
    r"exceeds the context|input token count.{0,40}exceeds"
)
_AUTH = _rx(
    r"api[ _-]?key (?:not valid|is invalid|invalid)|invalid[ _-]api[ _-]?key|incorrect api key|"
    r"invalid x-api-key|"
    r"api_key_invalid|invalid authentication|authentication failed|unauthori[sz]ed|invalid (?:bearer )?token"
)
_RATE = _rx(
    r"rate[ _-]?limit|too many requests|throttl|please wait before trying again|slow down|"
    r"resource (?:has been )?exhausted"
)
_OVERLOADED = _rx(
    r"overloaded|over capacity|capacity exceeded|no capacity|service unavailable|temporarily unavailable|"
    r"\bUNAVAILABLE\b"
)
# "timeout=600" in a debug dump is a setting, not an event.
_TIMEOUT = _rx(r"timed out|deadline[ _]exceeded|\btime[ -]?out\b(?!\s*[=:]\s*\d)")
_CONNECTION = _rx(
    r"connection (?:error|refused|reset|aborted|closed)|cannot connect to host|could not connect|"
    r"failed to establish a new connection|name or service not known|temporary failure in name resolution|"
    r"server disconnected|remote end closed|broken pipe|network is unreachable|connection was closed|"
    r"peer closed connection|EOF occurred"
)
# The provider answered with something that is not a valid response (LiteLLM reports a malformed Gemini body
# as a 422 BadRequestError): the provider failed, not the request.
_BROKEN_RESPONSE = _rx(
    r"error converting to valid response|unable to get json response|unterminated string|expecting value|"
    r"invalid json in response|jsondecodeerror"
)
_PERMISSION = _rx(r"permission denied|access denied|not authori[sz]ed to|does not have access|forbidden")
_NOT_FOUND = _rx(r"model .{0,80}(?:not found|does not exist)|no such model|unknown model")
_CONTENT_FILTER = _rx(r"content (?:management )?(?:policy|filter)|content_filter|responsibleaipolicyviolation")

MESSAGE_PATTERNS: Final[tuple[tuple[re.Pattern[str], StandardErrorCode], ...]] = (
    (_CONTEXT, C.REQUEST_TOO_LARGE),
    (QUOTA_WORDING, C.QUOTA_EXHAUSTED),
    (_AUTH, C.AUTHENTICATION),
    (_RATE, C.RATE_LIMITED),
    (_PERMISSION, C.PERMISSION_DENIED),
    (_OVERLOADED, C.OVERLOADED),
    (_TIMEOUT, C.TIMEOUT),
    (_CONNECTION, C.SERVER_ERROR),
    (_BROKEN_RESPONSE, C.SERVER_ERROR),
    (_NOT_FOUND, C.NOT_FOUND),
    (_CONTENT_FILTER, C.INVALID_REQUEST),
)
"""Generic message patterns, most specific first; matched against text with URLs removed."""

ALL_CODES: Final = frozenset(C)

ALLOWED_REFINEMENTS: Final[Mapping[StandardErrorCode, frozenset[StandardErrorCode]]] = {
    # A bare 400 is refined by what the message says it is (a too-long prompt, an empty credit balance,
    # a bad key, throttling, an unsupported region).
    C.INVALID_REQUEST: frozenset(
        {C.REQUEST_TOO_LARGE, C.QUOTA_EXHAUSTED, C.AUTHENTICATION, C.RATE_LIMITED, C.PERMISSION_DENIED, C.SERVER_ERROR}
    ),
    # A 429 is a rate limit unless the message says the quota is spent (or the provider is at capacity).
    C.RATE_LIMITED: frozenset({C.QUOTA_EXHAUSTED, C.OVERLOADED}),
    # A 500 (LiteLLM reports Gemini 503s and refused connections as 500) may say overload or timeout.
    C.SERVER_ERROR: frozenset({C.OVERLOADED, C.TIMEOUT}),
    # Nothing else known: the message is all the evidence there is.
    C.UNKNOWN: ALL_CODES - {C.UNKNOWN, C.CANCELLED},
}
"""Which codes, decided from a status or a generic type/code, the message may refine into which others."""

# --- Exception types (matched by top-level package and class name, so nothing is imported) ------------------

_SDK_STATUS_CLASSES: Final[Mapping[str, StandardErrorCode]] = {
    "BadRequestError": C.INVALID_REQUEST,
    "AuthenticationError": C.AUTHENTICATION,
    "PermissionDeniedError": C.PERMISSION_DENIED,
    "NotFoundError": C.NOT_FOUND,
    "ConflictError": C.CONFLICT,
    "UnprocessableEntityError": C.INVALID_REQUEST,
    "RateLimitError": C.RATE_LIMITED,
    "InternalServerError": C.SERVER_ERROR,
    "APIResponseValidationError": C.SERVER_ERROR,
}

TYPE_MAP: Final[Mapping[tuple[str, str], tuple[StandardErrorCode, bool]]] = {
    # (top-level package, class name) -> (code, specific). A *specific* type is a diagnosis and beats the
    # HTTP status (LiteLLM's ContextWindowExceededError has status 400); a generic one only stands in for one.
    **{("openai", name): (code, False) for name, code in _SDK_STATUS_CLASSES.items()},
    **{("anthropic", name): (code, False) for name, code in _SDK_STATUS_CLASSES.items()},
    **{("litellm", name): (code, False) for name, code in _SDK_STATUS_CLASSES.items()},
    ("openai", "APITimeoutError"): (C.TIMEOUT, True),
    ("openai", "APIConnectionError"): (C.SERVER_ERROR, True),
    ("openai", "ContentFilterFinishReasonError"): (C.INVALID_REQUEST, True),
    ("anthropic", "APITimeoutError"): (C.TIMEOUT, True),
    ("anthropic", "APIConnectionError"): (C.SERVER_ERROR, True),
    ("anthropic", "OverloadedError"): (C.OVERLOADED, False),
    ("anthropic", "ServiceUnavailableError"): (C.OVERLOADED, False),
    ("anthropic", "GatewayTimeoutError"): (C.TIMEOUT, False),
    ("anthropic", "RequestTimeoutError"): (C.TIMEOUT, False),
    ("anthropic", "ContentTooLargeError"): (C.REQUEST_TOO_LARGE, False),
    ("anthropic", "PaymentRequiredError"): (C.QUOTA_EXHAUSTED, False),
    ("anthropic", "ClientClosedRequestError"): (C.CANCELLED, False),
    # LiteLLM (litellm.exceptions and the Router's errors).
    ("litellm", "ContextWindowExceededError"): (C.REQUEST_TOO_LARGE, True),
    ("litellm", "ContentPolicyViolationError"): (C.INVALID_REQUEST, True),
    ("litellm", "PaymentRequiredError"): (C.QUOTA_EXHAUSTED, True),
    ("litellm", "BudgetExceededError"): (C.QUOTA_EXHAUSTED, True),
    ("litellm", "RouterRateLimitError"): (C.RATE_LIMITED, True),
    ("litellm", "RouterRateLimitErrorBasic"): (C.RATE_LIMITED, True),
    ("litellm", "Timeout"): (C.TIMEOUT, True),
    ("litellm", "APIConnectionError"): (C.SERVER_ERROR, True),
    ("litellm", "UnsupportedParamsError"): (C.INVALID_REQUEST, True),
    ("litellm", "ServiceUnavailableError"): (C.OVERLOADED, False),
    ("litellm", "BadGatewayError"): (C.SERVER_ERROR, False),
    # httpx (and httpx2, which the OpenAI and Anthropic SDKs use): see _TYPE_ROOT_ALIASES.
    ("httpx", "TimeoutException"): (C.TIMEOUT, True),
    ("httpx", "NetworkError"): (C.SERVER_ERROR, True),
    ("httpx", "RemoteProtocolError"): (C.SERVER_ERROR, True),
    ("httpx", "ProxyError"): (C.SERVER_ERROR, True),
    ("httpx", "DecodingError"): (C.SERVER_ERROR, True),
    ("httpx", "LocalProtocolError"): (C.INVALID_REQUEST, True),
    ("httpx", "UnsupportedProtocol"): (C.INVALID_REQUEST, True),
    # aiohttp (LiteLLM's default async transport).
    ("aiohttp", "ServerTimeoutError"): (C.TIMEOUT, True),
    ("aiohttp", "ClientConnectionError"): (C.SERVER_ERROR, True),
    ("aiohttp", "ClientPayloadError"): (C.SERVER_ERROR, True),
    # requests / urllib3 / botocore transports.
    ("requests", "Timeout"): (C.TIMEOUT, True),
    ("requests", "ConnectionError"): (C.SERVER_ERROR, True),
    ("urllib3", "TimeoutError"): (C.TIMEOUT, True),
    ("urllib3", "ProtocolError"): (C.SERVER_ERROR, True),
    ("urllib3", "NewConnectionError"): (C.SERVER_ERROR, True),
    ("botocore", "ReadTimeoutError"): (C.TIMEOUT, True),
    ("botocore", "ConnectTimeoutError"): (C.TIMEOUT, True),
    ("botocore", "EndpointConnectionError"): (C.SERVER_ERROR, True),
    ("botocore", "ConnectionClosedError"): (C.SERVER_ERROR, True),
    ("google", "DeadlineExceeded"): (C.TIMEOUT, False),
    ("google", "ServiceUnavailable"): (C.OVERLOADED, False),
    ("google", "ResourceExhausted"): (C.RATE_LIMITED, False),
    # langchain-core ModelError family (partner packages raise classes inheriting from these and the SDK's).
    ("langchain_core", "ContextOverflowError"): (C.REQUEST_TOO_LARGE, True),
    ("langchain_core", "ModelTimeoutError"): (C.TIMEOUT, True),
    ("langchain_core", "ModelConnectionError"): (C.SERVER_ERROR, True),
    ("langchain_core", "ModelRateLimitError"): (C.RATE_LIMITED, False),
    ("langchain_core", "ModelAPIError"): (C.SERVER_ERROR, False),
    ("langchain_core", "ModelAuthenticationError"): (C.AUTHENTICATION, False),
    ("langchain_core", "ModelPermissionDeniedError"): (C.PERMISSION_DENIED, False),
    ("langchain_core", "ModelInvalidRequestError"): (C.INVALID_REQUEST, False),
    ("langchain_core", "ModelNotFoundError"): (C.NOT_FOUND, False),
    ("langchain_core", "ModelRefusalError"): (C.INVALID_REQUEST, True),
    # The standard library. Cancellation is reported as E4002; the caller still re-raises the original.
    ("asyncio", "CancelledError"): (C.CANCELLED, True),
    ("concurrent", "CancelledError"): (C.CANCELLED, True),
    ("builtins", "KeyboardInterrupt"): (C.CANCELLED, True),
    ("builtins", "SystemExit"): (C.CANCELLED, True),
    ("builtins", "GeneratorExit"): (C.CANCELLED, True),
    ("builtins", "TimeoutError"): (C.TIMEOUT, True),
    ("builtins", "ConnectionError"): (C.SERVER_ERROR, True),
    ("socket", "gaierror"): (C.SERVER_ERROR, True),
    ("trio", "Cancelled"): (C.CANCELLED, True),
}

# Classes that say the provider could not be reached at all (an E3001 raised as ``ProviderConnectionError``, a
# LangChain ``ModelConnectionError``) rather than that it answered with a failure.
CONNECTION_TYPES: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("openai", "APIConnectionError"),
        ("anthropic", "APIConnectionError"),
        ("litellm", "APIConnectionError"),
        ("httpx", "NetworkError"),
        ("httpx", "ProxyError"),
        ("aiohttp", "ClientConnectionError"),
        ("requests", "ConnectionError"),
        ("urllib3", "NewConnectionError"),
        ("botocore", "EndpointConnectionError"),
        ("langchain_core", "ModelConnectionError"),
        ("builtins", "ConnectionError"),
        ("socket", "gaierror"),
    }
)

TYPE_ROOT_ALIASES: Final[Mapping[str, str]] = {"httpx2": "httpx", "google_genai": "google", "grpc": "google"}

# --- Providers ----------------------------------------------------------------------------------------------

DEFAULT_TABLE: Final = ProviderTable(
    body_codes={**_COMMON_BODY_CODES, **GRPC_STATUS_CODES, **AWS_ERROR_CODES},
    statuses=_DEFAULT_STATUSES,
)
"""Used for every provider, after (and under) the provider's own table."""

PROVIDER_TABLES: Final[Mapping[str, ProviderTable]] = {
    "openai": ProviderTable(
        body_codes={
            "tokens": C.RATE_LIMITED,  # 429 type when the token budget is hit
            "requests": C.RATE_LIMITED,
            "account_deactivated": C.PERMISSION_DENIED,
        },
        messages=(
            (_rx(r"exceeded your current quota|check your plan and billing"), C.QUOTA_EXHAUSTED),
            (_rx(r"maximum context length"), C.REQUEST_TOO_LARGE),
        ),
    ),
    "azure": ProviderTable(
        body_codes={
            "DeploymentNotFound": C.NOT_FOUND,
            "ResponsibleAIPolicyViolation": C.INVALID_REQUEST,
            "InvalidAuthenticationTokenTenant": C.AUTHENTICATION,
            "PermissionDenied": C.PERMISSION_DENIED,
            "OperationNotSupported": C.INVALID_REQUEST,
            "InsufficientQuota": C.QUOTA_EXHAUSTED,
            "tokens": C.RATE_LIMITED,
            "requests": C.RATE_LIMITED,
        },
        messages=((_rx(r"content management policy"), C.INVALID_REQUEST),),
    ),
    "anthropic": ProviderTable(
        body_codes={
            "invalid_request_error": C.INVALID_REQUEST,
            "authentication_error": C.AUTHENTICATION,
            "permission_error": C.PERMISSION_DENIED,
            "not_found_error": C.NOT_FOUND,
            "request_too_large": C.REQUEST_TOO_LARGE,
            "rate_limit_error": C.RATE_LIMITED,
            "api_error": C.SERVER_ERROR,
            "overloaded_error": C.OVERLOADED,
            "billing_error": C.QUOTA_EXHAUSTED,
            "timeout_error": C.TIMEOUT,
        },
        statuses={413: C.REQUEST_TOO_LARGE, 529: C.OVERLOADED},
        messages=(
            (_rx(r"credit balance is too low"), C.QUOTA_EXHAUSTED),
            (_rx(r"prompt is too long"), C.REQUEST_TOO_LARGE),
        ),
    ),
    "gemini": ProviderTable(
        body_codes=GRPC_STATUS_CODES,
        messages=(
            (_rx(r"api key not valid|API_KEY_INVALID|api key expired"), C.AUTHENTICATION),
            (_rx(r"user location is not supported|not available in your country"), C.PERMISSION_DENIED),
            (_rx(r"input token count.{0,40}exceeds"), C.REQUEST_TOO_LARGE),
        ),
    ),
    "deepseek": ProviderTable(
        body_codes={
            "invalid_request_error": C.INVALID_REQUEST,
            "authentication_error": C.AUTHENTICATION,
            "rate_limit_reached": C.RATE_LIMITED,
            "insufficient_quota": C.QUOTA_EXHAUSTED,
            "server_error": C.SERVER_ERROR,
        },
        statuses={402: C.QUOTA_EXHAUSTED, 422: C.INVALID_REQUEST, 503: C.OVERLOADED},
        messages=((_rx(r"insufficient balance"), C.QUOTA_EXHAUSTED),),
    ),
    "mistral": ProviderTable(
        body_codes={"rate_limited": C.RATE_LIMITED, "1300": C.RATE_LIMITED, "3505": C.OVERLOADED},
        # "Service tier capacity exceeded" arrives as 429 or 503 with type invalid_request_error: it is the
        # backend at capacity, not the caller's rate limit.
        messages=((_rx(r"capacity exceeded"), C.OVERLOADED),),
    ),
    "groq": ProviderTable(
        body_codes={"tokens": C.RATE_LIMITED, "requests": C.RATE_LIMITED},
        statuses={498: C.OVERLOADED},  # Groq: flex tier capacity exceeded
        messages=((_rx(r"request too large for model"), C.REQUEST_TOO_LARGE),),
    ),
    "bedrock": ProviderTable(
        body_codes=AWS_ERROR_CODES,
        statuses={424: C.SERVER_ERROR},
        messages=(
            (_rx(r"too many tokens|too many requests|please wait before trying again"), C.RATE_LIMITED),
            (_rx(r"input is too long|too many input tokens"), C.REQUEST_TOO_LARGE),
        ),
    ),
    "cohere": ProviderTable(
        statuses={498: C.AUTHENTICATION, 499: C.CANCELLED},  # Cohere: 498 invalid token, 499 cancelled
        messages=((_rx(r"trial key.{0,80}(?:/\s*month|per month)"), C.QUOTA_EXHAUSTED),),
    ),
}

PROVIDER_ALIASES: Final[Mapping[str, str]] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "openai_like": "openai",
    "azure": "azure",
    "azure_ai": "azure",
    "azure_text": "azure",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "gemini": "gemini",
    "google": "gemini",
    "google_genai": "gemini",
    "vertex_ai": "gemini",
    "vertex_ai_beta": "gemini",
    "palm": "gemini",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "codestral": "mistral",
    "groq": "groq",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "sagemaker": "bedrock",
    "aws": "bedrock",
    "cohere": "cohere",
    "cohere_chat": "cohere",
}


def normalize_provider(provider: str | None) -> str | None:
    """Map a LiteLLM provider name (``vertex_ai_beta``), a model id prefix or a test double to a table key."""
    if not provider:
        return None
    key = provider.strip().lower().split("/", 1)[0]
    key = key.removeprefix("mock-").removeprefix("mock_")
    if key in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key]
    prefixes = (("vertex", "gemini"), ("bedrock", "bedrock"), ("azure", "azure"), ("cohere", "cohere"))
    for prefix, name in prefixes:
        if key.startswith(prefix):
            return name
    return key


def _lower_keys(table: Mapping[str, StandardErrorCode]) -> dict[str, StandardErrorCode]:
    return {key.lower(): value for key, value in table.items()}


_LOWER_DEFAULT: Final = _lower_keys(DEFAULT_TABLE.body_codes)
_LOWER_PROVIDERS: Final = {name: _lower_keys(table.body_codes) for name, table in PROVIDER_TABLES.items()}


def lookup_body_code(provider: str | None, code: str) -> StandardErrorCode | None:
    """The standard code for a provider's body code or type (case-insensitive), provider table first."""
    key = code.strip().lower()
    if not key:
        return None
    table = _LOWER_PROVIDERS.get(normalize_provider(provider) or "")
    if table and key in table:
        return table[key]
    return _LOWER_DEFAULT.get(key)


def lookup_status(provider: str | None, status: int) -> StandardErrorCode | None:
    """The standard code for an HTTP status: the provider's table, the default one, then the 4xx/5xx class."""
    table = PROVIDER_TABLES.get(normalize_provider(provider) or "")
    if table and status in table.statuses:
        return table.statuses[status]
    if status in DEFAULT_TABLE.statuses:
        return DEFAULT_TABLE.statuses[status]
    if 400 <= status < 500:
        return C.INVALID_REQUEST
    if 500 <= status < 600:
        return C.SERVER_ERROR
    return None


def provider_message_patterns(provider: str | None) -> tuple[tuple[re.Pattern[str], StandardErrorCode], ...]:
    """The provider's own message patterns followed by the generic ones."""
    table = PROVIDER_TABLES.get(normalize_provider(provider) or "")
    return (table.messages if table else ()) + MESSAGE_PATTERNS
