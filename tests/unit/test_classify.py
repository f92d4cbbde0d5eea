"""classify_error / classify_http against real exception objects from LiteLLM, the SDKs and the transports.

Exceptions are built with their libraries' real constructors and the shapes LiteLLM 1.110 was observed to
produce against a local server (the provider's JSON inside the message, statuses remapped, headers kept on
``litellm_response_headers`` or ``response.headers``).
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx
import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_ailib_resilience.errors import (
    FallbackableError,
    ResilienceError,
    RetryableError,
    StandardErrorCode,
    classify_error,
    classify_http,
)

C = StandardErrorCode
LE = litellm.exceptions
REQ = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def resp(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers, request=REQ)
    return httpx.Response(status, json=body, headers=headers, request=REQ)


def openai_body(message: str, type_: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def anthropic_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def sdk_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """A response of the kind the OpenAI and Anthropic SDKs (httpx2) attach to their errors."""
    import httpx2

    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    if body is None:
        return httpx2.Response(status, headers=headers, request=request)
    return httpx2.Response(status, json=body, headers=headers, request=request)


def assert_flags(error: ResilienceError) -> None:
    assert isinstance(error, RetryableError) is error.code.retryable
    assert isinstance(error, FallbackableError) is error.code.fallbackable


# --- quota versus rate limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["code", "type"])
def test_openai_429_insufficient_quota_is_quota_exhausted(where: str) -> None:
    error_body = {"message": "You exceeded your current quota, please check your plan.", "param": None}
    error_body[where] = "insufficient_quota"
    exc = LE.RateLimitError(
        message="OpenAIException - You exceeded your current quota",
        llm_provider="openai",
        model="gpt-4o",
        response=resp(429, {"error": error_body}, {"retry-after": "20"}),
    )

    error = classify_error(exc)

    assert error.code is C.QUOTA_EXHAUSTED
    assert not error.retryable and error.fallbackable
    assert error.provider_code == "insufficient_quota"
    assert error.status_code == 429
    assert (error.provider, error.model) == ("openai", "gpt-4o")
    assert error.retry_after == 20.0
    assert error.__cause__ is exc
    assert_flags(error)


def test_litellm_body_argument_with_insufficient_quota_in_type() -> None:
    # LiteLLM passes the provider's inner error object as ``body`` on the OpenAI path.
    exc = LE.RateLimitError(
        message="OpenAIException - quota",
        llm_provider="openai",
        model="gpt-4o",
        body={"message": "quota", "type": "insufficient_quota", "code": None},
    )
    assert classify_error(exc).code is C.QUOTA_EXHAUSTED


def test_billing_in_a_url_does_not_make_a_rate_limit_a_quota() -> None:
    message = (
        "Rate limit reached for gpt-4o in organization org-abc. Limit 500, Used 500. "
        "For details see https://platform.openai.com/account/billing/limits "
        "or platform.openai.com/account/billing"
    )
    exc = LE.RateLimitError(message=f"OpenAIException - {message}", llm_provider="openai", model="gpt-4o")
    assert classify_error(exc).code is C.RATE_LIMITED
    assert classify_http(429, {"error": {"message": message}}, provider="openai").code is C.RATE_LIMITED
    # Control: the same words outside a URL do mean the account has run out.
    spent = "You exceeded your current quota, please check your plan and billing details."
    assert classify_http(429, {"error": {"message": spent}}, provider="openai").code is C.QUOTA_EXHAUSTED


def test_azure_quota_increase_link_is_still_a_rate_limit() -> None:
    body = {
        "error": {
            "code": "429",
            "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry "
            "after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further "
            "increase the default "
            "rate limit.",
        }
    }
    error = classify_http(429, body, provider="azure")
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 6.0


def test_per_minute_limit_is_a_rate_limit_even_when_called_quota() -> None:
    message = "Quota exceeded: requests per minute for this project"
    assert classify_http(429, {"error": {"message": message}}, provider="openai").code is C.RATE_LIMITED


def test_402_is_quota_exhausted() -> None:
    assert classify_http(402, {"error": {"message": "Insufficient Balance"}}, provider="deepseek").code is (
        C.QUOTA_EXHAUSTED
    )
    exc = LE.PaymentRequiredError(message="OpenAIException - payment required", model="x", llm_provider="openai")
    assert classify_error(exc).code is C.QUOTA_EXHAUSTED
    api_error = LE.APIError(
        status_code=402,
        message="OpenAIException - credit",
        llm_provider="openai",
        model="gpt-4o",
        request=REQ,
        response=resp(402, openai_body("credit", "billing", "payment_required")),
    )
    assert classify_error(api_error).code is C.QUOTA_EXHAUSTED


def test_anthropic_credit_balance_too_low_is_quota_exhausted() -> None:
    body = anthropic_body(
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade.",
    )
    # As LiteLLM raises it: a 400 BadRequestError with the provider's JSON in the message.
    exc = LE.BadRequestError(
        message=f"AnthropicException - {json.dumps(body)}",
        model="claude-3-5-sonnet",
        llm_provider="anthropic",
    )
    error = classify_error(exc)
    assert error.code is C.QUOTA_EXHAUSTED
    assert error.provider_code == "invalid_request_error"
    # As the Anthropic SDK raises it.
    import anthropic

    sdk = anthropic.BadRequestError("credit", response=sdk_response(400, body), body=body)
    assert classify_error(sdk).code is C.QUOTA_EXHAUSTED
    assert classify_http(400, body, provider="anthropic").code is C.QUOTA_EXHAUSTED


# --- overloaded and server errors ---------------------------------------------------------------------------


def test_anthropic_529_overloaded() -> None:
    body = anthropic_body("overloaded_error", "Overloaded")
    assert classify_http(529, body, provider="anthropic").code is C.OVERLOADED

    # LiteLLM: InternalServerError(500) with provider_status_code=529 and the body in the message.
    exc = LE.InternalServerError(
        message=f"AnthropicError - {json.dumps(body)}",
        llm_provider="anthropic",
        model="claude-3-5-sonnet",
        provider_status_code=529,
    )
    exc.litellm_response_headers = httpx.Headers({"retry-after": "3"})
    error = classify_error(exc)
    assert error.code is C.OVERLOADED
    assert error.retryable and error.fallbackable
    assert error.status_code == 529
    assert error.provider_code == "overloaded_error"
    assert error.retry_after == 3.0
    assert_flags(error)


def test_litellm_529_without_a_body_still_overloaded() -> None:
    exc = LE.InternalServerError(
        message="AnthropicError - something",
        llm_provider="anthropic",
        model="claude",
        provider_status_code=529,
    )
    assert classify_error(exc).code is C.OVERLOADED


def test_anthropic_sdk_overloaded_error() -> None:
    import anthropic

    body = anthropic_body("overloaded_error", "Overloaded")
    exc = anthropic.InternalServerError("Overloaded", response=sdk_response(529, body), body=body)
    assert classify_error(exc).code is C.OVERLOADED


def test_503_is_overloaded() -> None:
    assert classify_http(503, {"error": {"message": "down", "type": "server_error"}}).code is C.OVERLOADED
    exc = LE.ServiceUnavailableError(message="OpenAIException - unavailable", llm_provider="openai", model="x")
    assert classify_error(exc).code is C.OVERLOADED
    import openai

    sdk = openai.InternalServerError("unavailable", response=sdk_response(503), body=None)
    assert classify_error(sdk).code is C.OVERLOADED


def test_gemini_503_reported_by_litellm_as_500() -> None:
    body = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    exc = LE.InternalServerError(
        message=f"litellm.InternalServerError: geminiException - {json.dumps(body)}",
        llm_provider="gemini",
        model="gemini-2.0-flash",
    )
    error = classify_error(exc)
    assert error.code is C.OVERLOADED
    assert error.status_code == 503  # what Google answered, not LiteLLM's 500


def test_plain_500_is_server_error() -> None:
    error = classify_http(500, openai_body("An error occurred", "server_error", "server_error"))
    assert error.code is C.SERVER_ERROR
    exc = LE.InternalServerError(message="OpenAIException - boom", llm_provider="openai", model="gpt-4o")
    assert classify_error(exc).code is C.SERVER_ERROR


def test_litellm_api_error_529_and_403_from_openai_compatible_servers() -> None:
    overloaded = LE.APIError(
        status_code=529,
        message="OpenAIException - overloaded",
        llm_provider="openai",
        model="m",
        request=REQ,
        response=resp(529, openai_body("overloaded", "server_error", "overloaded")),
    )
    assert classify_error(overloaded).code is C.OVERLOADED
    bare = LE.APIError(status_code=529, message="OpenAIException - busy", llm_provider="openai", model="m")
    assert classify_error(bare).code is C.OVERLOADED

    forbidden = LE.APIError(status_code=403, message="OpenAIException - no access", llm_provider="openai", model="m")
    error = classify_error(forbidden)
    assert error.code is C.PERMISSION_DENIED
    assert not error.retryable and not error.fallbackable


# --- request too large --------------------------------------------------------------------------------------


def test_prompt_too_long_400_is_request_too_large() -> None:
    body = anthropic_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    assert classify_http(400, body, provider="anthropic").code is C.REQUEST_TOO_LARGE
    # Any provider: the message is what says it.
    assert classify_http(400, body).code is C.REQUEST_TOO_LARGE


def test_context_length_exceeded_code() -> None:
    body = openai_body("This model's maximum context length is 128000 tokens", "invalid_request_error", None)
    body["error"]["code"] = "context_length_exceeded"
    error = classify_http(400, body, provider="openai")
    assert error.code is C.REQUEST_TOO_LARGE
    assert error.provider_code == "context_length_exceeded"

    import openai

    sdk = openai.BadRequestError("too long", response=sdk_response(400, body), body=body["error"])
    assert classify_error(sdk).code is C.REQUEST_TOO_LARGE


def test_litellm_context_window_exceeded_error() -> None:
    exc = LE.ContextWindowExceededError(
        message="OpenAIException - input too big", model="gpt-4o", llm_provider="openai"
    )
    assert exc.status_code == 400
    assert classify_error(exc).code is C.REQUEST_TOO_LARGE


def test_413_is_request_too_large() -> None:
    assert classify_http(413, None).code is C.REQUEST_TOO_LARGE
    body = anthropic_body("request_too_large", "Request exceeds the maximum allowed number of bytes.")
    assert classify_http(413, body, provider="anthropic").code is C.REQUEST_TOO_LARGE


def test_groq_413_with_rate_limit_code_is_too_large_not_rate_limited() -> None:
    body = openai_body(
        "Request too large for model `llama3-70b-8192` on tokens per minute (TPM): Limit 6000, Requested 7500",
        "tokens",
        "rate_limit_exceeded",
    )
    error = classify_http(413, body, provider="groq")
    assert error.code is C.REQUEST_TOO_LARGE
    assert not error.retryable


def test_langchain_context_overflow_even_inside_an_sdk_subclass() -> None:
    lc_exceptions = pytest.importorskip("langchain_core.exceptions")
    overflow = getattr(lc_exceptions, "ContextOverflowError", None)
    if overflow is None:
        pytest.skip("langchain-core without ContextOverflowError")
    import openai

    class PartnerOverflow(openai.BadRequestError, overflow):  # type: ignore[misc,valid-type]
        """How partner packages raise it: the SDK's class and LangChain's."""

    exc = PartnerOverflow("Bad request", response=sdk_response(400), body=None)
    assert classify_error(exc).code is C.REQUEST_TOO_LARGE
    assert classify_error(overflow("too long")).code is C.REQUEST_TOO_LARGE


# --- connection errors and timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        BrokenPipeError(32, "Broken pipe"),
        httpx.ConnectError("[Errno 111] Connection refused", request=REQ),
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQ),
        httpx.ReadError("read failed", request=REQ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_failures_are_retryable_server_errors(exc: BaseException) -> None:
    error = classify_error(exc)
    assert error.code is C.SERVER_ERROR
    assert error.retryable and error.fallbackable
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    ("message", "provider_status"),
    [
        ("InternalServerError: OpenAIException - Connection error.", None),
        ("AnthropicException - Cannot connect to host 127.0.0.1:1 ssl:default [Connect call failed]", 500),
        ("AnthropicException - [Errno 111] Connection refused.", 500),
    ],
)
def test_litellm_connection_failures(message: str, provider_status: int | None) -> None:
    exc = LE.InternalServerError(
        message=message, llm_provider="openai", model="gpt-4o", provider_status_code=provider_status
    )
    assert classify_error(exc).code is C.SERVER_ERROR
    conn = LE.APIConnectionError(message=message, llm_provider="openai", model="gpt-4o")
    error = classify_error(conn)
    assert error.code is C.SERVER_ERROR and error.retryable


def test_sdk_connection_and_timeout_errors() -> None:
    import anthropic
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1")
    assert classify_error(openai.APIConnectionError(request=request)).code is C.SERVER_ERROR
    # APITimeoutError is an APIConnectionError: the timeout must win.
    assert classify_error(openai.APITimeoutError(request=request)).code is C.TIMEOUT
    assert classify_error(anthropic.APIConnectionError(request=request)).code is C.SERVER_ERROR
    assert classify_error(anthropic.APITimeoutError(request=request)).code is C.TIMEOUT


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out", request=REQ),
        httpx.ReadTimeout("timed out", request=REQ),
        httpx.PoolTimeout("pool", request=REQ),
        TimeoutError(),
        asyncio.TimeoutError(),  # noqa: UP041 - the alias callers still write
    ],
    ids=lambda e: type(e).__name__,
)
def test_timeouts(exc: BaseException) -> None:
    error = classify_error(exc)
    assert error.code is C.TIMEOUT
    assert error.retryable and error.fallbackable


def test_litellm_timeout_and_408_504() -> None:
    exc = LE.Timeout(message="APITimeoutError - Request timed out.", model="gpt-4o", llm_provider="openai")
    assert classify_error(exc).code is C.TIMEOUT
    gateway = LE.Timeout(
        message="Timeout Error: OpenAIException - gateway timeout",
        model="gpt-4o",
        llm_provider="openai",
        exception_status_code=504,
    )
    assert classify_error(gateway).code is C.TIMEOUT
    assert classify_http(408, None).code is C.TIMEOUT
    assert classify_http(504, None).code is C.TIMEOUT


def test_aiohttp_errors() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    assert classify_error(aiohttp.ServerDisconnectedError()).code is C.SERVER_ERROR
    assert classify_error(aiohttp.ServerTimeoutError("read timeout")).code is C.TIMEOUT
    response_error = aiohttp.ClientResponseError(
        None,  # type: ignore[arg-type]
        (),
        status=503,
        message="Service Unavailable",
        headers={"Retry-After": "4"},
    )
    error = classify_error(response_error)
    assert error.code is C.OVERLOADED
    assert error.retry_after == 4.0


def test_httpx_status_error_reads_status_body_and_headers() -> None:
    response = resp(
        429, openai_body("You exceeded your current quota", "insufficient_quota", None), {"retry-after": "9"}
    )
    exc = httpx.HTTPStatusError("429", request=REQ, response=response)
    error = classify_error(exc)
    assert error.code is C.QUOTA_EXHAUSTED
    assert error.status_code == 429
    assert error.retry_after == 9.0


def test_unread_streaming_response_is_not_read() -> None:
    response = httpx.Response(502, stream=httpx.ByteStream(b'{"error": "x"}'), request=REQ)
    exc = httpx.HTTPStatusError("502", request=REQ, response=response)
    assert classify_error(exc).code is C.SERVER_ERROR
    assert not response.is_closed  # we did not consume the stream


# --- conflict, content filter, auth, not found --------------------------------------------------------------


def test_409_is_conflict() -> None:
    error = classify_http(409, {"error": {"message": "conflict"}})
    assert error.code is C.CONFLICT
    assert error.retryable and not error.fallbackable
    import openai

    assert classify_error(openai.ConflictError("conflict", response=sdk_response(409), body=None)).code is (C.CONFLICT)


AZURE_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": True, "severity": "high"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        },
    }
}


def test_azure_content_filter_keeps_its_reason() -> None:
    error = classify_http(400, AZURE_FILTER, provider="azure")
    assert error.code is C.INVALID_REQUEST
    assert error.provider_code == "content_filter"
    assert error.reason is not None
    assert "ResponsibleAIPolicyViolation" in error.reason
    assert "hate (high)" in error.reason and "violence" not in error.reason
    assert "ResponsibleAIPolicyViolation" in str(error)

    exc = LE.BadRequestError(
        message="AzureException - The response was filtered",
        model="gpt-4o",
        llm_provider="azure",
        response=resp(400, AZURE_FILTER),
    )
    from_litellm = classify_error(exc)
    assert from_litellm.code is C.INVALID_REQUEST
    assert from_litellm.reason == error.reason


def test_litellm_content_policy_violation_with_provider_specific_fields() -> None:
    inner = AZURE_FILTER["error"]["innererror"]
    exc = LE.ContentPolicyViolationError(
        message="The response was filtered",
        model="gpt-4o",
        llm_provider="azure",
        provider_specific_fields={"innererror": inner, "inner_error": inner, "azure_error": None},
        body={
            "message": "filtered",
            "type": "invalid_request_error",
            "code": "content_filter",
            "param": None,
        },
    )
    error = classify_error(exc)
    assert error.code is C.INVALID_REQUEST
    assert error.reason is not None and error.reason.startswith("ResponsibleAIPolicyViolation")


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (LE.AuthenticationError, 401, C.AUTHENTICATION),
        (LE.PermissionDeniedError, 403, C.PERMISSION_DENIED),
        (LE.NotFoundError, 404, C.NOT_FOUND),
        (LE.BadRequestError, 400, C.INVALID_REQUEST),
        (LE.UnprocessableEntityError, 422, C.INVALID_REQUEST),
        (LE.RateLimitError, 429, C.RATE_LIMITED),
        (LE.ServiceUnavailableError, 503, C.OVERLOADED),
        (LE.BadGatewayError, 502, C.SERVER_ERROR),
        (LE.InternalServerError, 500, C.SERVER_ERROR),
        (LE.UnsupportedParamsError, 400, C.INVALID_REQUEST),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_litellm_classes_with_plain_messages(cls: type[Exception], status: int, code: StandardErrorCode) -> None:
    exc = cls(message="provider said no", llm_provider="openai", model="gpt-4o", response=resp(status))  # type: ignore[call-arg]
    error = classify_error(exc)
    assert error.code is code
    assert (error.provider, error.model) == ("openai", "gpt-4o")
    assert_flags(error)


def test_gemini_bad_api_key_400_is_authentication() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
    }
    assert classify_http(400, body, provider="gemini").code is C.AUTHENTICATION
    # LiteLLM already remaps it to AuthenticationError(401); the generic INVALID_ARGUMENT must not undo that.
    exc = LE.AuthenticationError(
        message=f"GeminiException - {json.dumps(body)}", llm_provider="gemini", model="gemini-2.0-flash"
    )
    assert classify_error(exc).code is C.AUTHENTICATION


# --- Bedrock / AWS ------------------------------------------------------------------------------------------


def _client_error(code: str, message: str, status: int) -> Exception:
    botocore_exceptions = pytest.importorskip("botocore.exceptions")
    return botocore_exceptions.ClientError(  # type: ignore[no-any-return]
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Converse",
    )


@pytest.mark.parametrize(
    ("aws_code", "status", "expected"),
    [
        ("ThrottlingException", 400, C.RATE_LIMITED),
        ("ThrottlingException", 429, C.RATE_LIMITED),
        ("ServiceQuotaExceededException", 400, C.QUOTA_EXHAUSTED),
        ("ServiceUnavailableException", 503, C.OVERLOADED),
        ("ModelNotReadyException", 429, C.OVERLOADED),
        ("ModelTimeoutException", 408, C.TIMEOUT),
        ("AccessDeniedException", 403, C.PERMISSION_DENIED),
        ("ResourceNotFoundException", 404, C.NOT_FOUND),
        ("InternalServerException", 500, C.SERVER_ERROR),
        ("ModelErrorException", 424, C.SERVER_ERROR),
        ("ValidationException", 400, C.INVALID_REQUEST),
    ],
)
def test_bedrock_client_errors(aws_code: str, status: int, expected: StandardErrorCode) -> None:
    error = classify_error(_client_error(aws_code, "something happened", status), provider="bedrock")
    assert error.code is expected
    assert error.status_code == status
    assert error.provider_code == aws_code


def test_bedrock_validation_too_long_is_request_too_large() -> None:
    exc = _client_error("ValidationException", "Input is too long for requested model.", 400)
    assert classify_error(exc).code is C.REQUEST_TOO_LARGE


def test_bedrock_throttling_through_litellm_and_raw_http() -> None:
    exc = LE.RateLimitError(
        message='BedrockException - {"message":"Too many requests, please wait before trying again."}',
        llm_provider="bedrock",
        model="anthropic.claude-3-5-sonnet",
    )
    assert classify_error(exc).code is C.RATE_LIMITED
    body = {"__type": "com.amazon.coral.availability#ThrottlingException", "message": "Rate exceeded"}
    error = classify_http(400, body, provider="bedrock")
    assert error.code is C.RATE_LIMITED
    assert error.provider_code == "ThrottlingException"


# --- Google -------------------------------------------------------------------------------------------------


def gemini_429(message: str, quota_id: str | None = None, delay: str | None = "5s") -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if quota_id:
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": quota_id}]})
    if delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            gemini_429(
                "Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_requests per day"
            ),
            C.QUOTA_EXHAUSTED,
        ),
        (
            gemini_429(
                "You exceeded your current quota, please check your plan and billing details.",
                quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            ),
            C.QUOTA_EXHAUSTED,
        ),
        (gemini_429("You exceeded your current quota."), C.QUOTA_EXHAUSTED),
        (
            gemini_429(
                "You exceeded your current quota. Quota exceeded for metric: generate_content_free_tier_requests",
                quota_id="GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            ),
            C.RATE_LIMITED,
        ),
        (gemini_429("Resource has been exhausted (e.g. check quota).", delay=None), C.RATE_LIMITED),
        (gemini_429("Resource exhausted. Please try again later.", delay=None), C.RATE_LIMITED),
    ],
)
def test_gemini_resource_exhausted(body: dict[str, Any], expected: StandardErrorCode) -> None:
    error = classify_http(429, body, provider="gemini")
    assert error.code is expected
    assert error.provider_code == "RESOURCE_EXHAUSTED"
    # The same body as LiteLLM raises it: a RateLimitError with the JSON in the message.
    exc = LE.RateLimitError(
        message=f"litellm.RateLimitError: geminiException - {json.dumps(body)}",
        llm_provider="gemini",
        model="gemini-2.0-flash",
    )
    assert classify_error(exc).code is expected


def test_gemini_retry_delay_becomes_retry_after() -> None:
    error = classify_http(429, gemini_429("Resource exhausted.", delay="7s"), provider="vertex_ai")
    assert error.retry_after == 7.0


class _StatusCode:
    """Stands in for grpc.StatusCode members (an enum with ``.name``)."""

    def __init__(self, name: str) -> None:
        self.name = name


def _google_error(class_name: str, module: str, **attrs: Any) -> Exception:
    cls = type(class_name, (Exception,), {"__module__": module})
    exc = cls(attrs.pop("message", "google error"))
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


def test_google_api_core_style_error_by_grpc_status() -> None:
    exc = _google_error(
        "TooManyRequests",
        "google.api_core.exceptions",
        message="429 Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute",
        code=429,
        grpc_status_code=_StatusCode("RESOURCE_EXHAUSTED"),
    )
    error = classify_error(exc)
    assert error.code is C.RATE_LIMITED
    assert error.status_code == 429


def test_grpc_style_error_code_method() -> None:
    exc = _google_error("_InactiveRpcError", "grpc._channel", message="unavailable")
    exc.code = lambda: _StatusCode("UNAVAILABLE")  # type: ignore[attr-defined]
    exc.details = lambda: "unavailable"  # type: ignore[attr-defined]
    assert classify_error(exc).code is C.OVERLOADED
    deadline = _google_error("_InactiveRpcError", "grpc._channel", message="deadline")
    deadline.code = lambda: _StatusCode("DEADLINE_EXCEEDED")  # type: ignore[attr-defined]
    deadline.details = lambda: "Deadline Exceeded"  # type: ignore[attr-defined]
    assert classify_error(deadline).code is C.TIMEOUT


def test_google_genai_style_error_with_status_string_and_details() -> None:
    body = gemini_429("You exceeded your current quota", quota_id="GenerateRequestsPerDayPerProjectPerModel")
    exc = _google_error(
        "ClientError",
        "google.genai.errors",
        message="429 RESOURCE_EXHAUSTED",
        code=429,
        status="RESOURCE_EXHAUSTED",
        details=body,
    )
    error = classify_error(exc)
    assert error.code is C.QUOTA_EXHAUSTED
    assert error.retry_after == 5.0


# --- LiteLLM specials ---------------------------------------------------------------------------------------


def test_mid_stream_fallback_error_uses_the_original() -> None:
    original = LE.RateLimitError(
        message="AnthropicException - rate limited",
        llm_provider="anthropic",
        model="claude",
        response=resp(429, None, {"retry-after": "11"}),
    )
    exc = LE.MidStreamFallbackError(
        message="stream failed", model="claude", llm_provider="anthropic", original_exception=original
    )
    error = classify_error(exc)
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 11.0
    assert error.__cause__ is exc


def test_mid_stream_fallback_error_without_original_is_overloaded() -> None:
    exc = LE.MidStreamFallbackError(message="stream failed", model="m", llm_provider="openai")
    assert classify_error(exc).code is C.OVERLOADED


def test_router_rate_limit_error_cooldown_is_retry_after() -> None:
    from litellm.types.router import RouterRateLimitError

    exc = RouterRateLimitError(model="gpt-4o", cooldown_time=12.5, enable_pre_call_checks=False, cooldown_list=[])
    error = classify_error(exc)
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 12.5
    assert error.model == "gpt-4o"


def test_budget_exceeded_is_quota() -> None:
    exc = LE.BudgetExceededError(current_cost=2.0, max_budget=1.0)
    error = classify_error(exc)
    assert error.code is C.QUOTA_EXHAUSTED
    assert not error.retryable and error.fallbackable


def test_vendor_429_retry_after_from_litellm_response_headers() -> None:
    exc = LE.RateLimitError(message="OpenAIException - slow down", llm_provider="openai", model="gpt-4o")
    assert exc.headers is None
    exc.litellm_response_headers = httpx.Headers({"retry-after-ms": "1500"})
    assert classify_error(exc).retry_after == 1.5


def test_retry_after_from_openai_reset_header_and_message() -> None:
    exc = LE.RateLimitError(
        message="OpenAIException - Rate limit reached. Please try again in 2.5s.",
        llm_provider="openai",
        model="gpt-4o",
        response=resp(429, None, {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0"}),
    )
    assert classify_error(exc).retry_after == 360.0
    bare = LE.RateLimitError(
        message="OpenAIException - Rate limit reached. Please try again in 2.5s.",
        llm_provider="openai",
        model="x",
    )
    assert classify_error(bare).retry_after == 2.5


# --- SDKs ---------------------------------------------------------------------------------------------------


def test_openai_sdk_status_errors() -> None:
    import openai

    body = openai_body("Rate limit reached", "requests", "rate_limit_exceeded")
    exc = openai.RateLimitError(
        "Rate limit reached", response=sdk_response(429, body, {"retry-after": "1"}), body=body["error"]
    )
    error = classify_error(exc, provider="openai", model="gpt-4o")
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 1.0
    assert error.provider_code == "rate_limit_exceeded"
    auth = openai.AuthenticationError("bad key", response=sdk_response(401), body=None)
    assert classify_error(auth).code is C.AUTHENTICATION
    missing = openai.NotFoundError("no model", response=sdk_response(404), body=None)
    assert classify_error(missing).code is C.NOT_FOUND


def test_anthropic_sdk_rate_limit_with_reset_headers() -> None:
    import anthropic

    body = anthropic_body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
    headers = {
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": "2000-01-01T00:00:00Z",
    }
    exc = anthropic.RateLimitError("rate limited", response=sdk_response(429, body, headers), body=body)
    error = classify_error(exc)
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 0.0  # the reset moment is already past
    assert error.provider_code == "rate_limit_error"


# --- langchain-core ModelError family -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ModelRateLimitError", C.RATE_LIMITED),
        ("ModelAPIError", C.SERVER_ERROR),
        ("ModelTimeoutError", C.TIMEOUT),
        ("ModelConnectionError", C.SERVER_ERROR),
        ("ContextOverflowError", C.REQUEST_TOO_LARGE),
        ("ModelAuthenticationError", C.AUTHENTICATION),
        ("ModelPermissionDeniedError", C.PERMISSION_DENIED),
        ("ModelNotFoundError", C.NOT_FOUND),
        ("ModelInvalidRequestError", C.INVALID_REQUEST),
    ],
)
def test_langchain_model_errors(name: str, code: StandardErrorCode) -> None:
    lc_exceptions = pytest.importorskip("langchain_core.exceptions")
    cls = getattr(lc_exceptions, name, None)
    if cls is None:
        pytest.skip(f"this langchain-core has no {name}")
    error = classify_error(cls("model failed"))
    assert error.code is code
    assert error.retryable is bool(getattr(cls, "is_retryable", error.retryable)) or code is C.CONFLICT


# --- cancellation, unknown, wrappers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(1)],
    ids=lambda e: type(e).__name__,
)
def test_cancellation_is_reported_as_cancelled(exc: BaseException) -> None:
    error = classify_error(exc)
    assert error.code is C.CANCELLED
    assert not error.retryable and not error.fallbackable
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("boom"),
        RuntimeError("something odd happened"),
        KeyError("timeout"),
        AttributeError("'NoneType' object has no attribute 'timeout'"),
        Exception(),
    ],
    ids=lambda e: f"{type(e).__name__}({e})",
)
def test_unknown_errors(exc: BaseException) -> None:
    error = classify_error(exc)
    assert error.code is C.UNKNOWN
    assert not error.retryable and not error.fallbackable


def test_message_only_errors_are_read_for_what_they_say() -> None:
    assert classify_error(Exception("Connection reset by peer")).code is C.SERVER_ERROR
    assert classify_error(RuntimeError("upstream timed out")).code is C.TIMEOUT
    assert classify_error(Exception('{"type":"error","error":{"type":"overloaded_error"}}')).code is C.OVERLOADED


def test_wrapped_errors_are_unwrapped() -> None:
    try:
        try:
            raise httpx.ConnectError("refused", request=REQ)
        except httpx.ConnectError as inner:
            raise RuntimeError("call failed") from inner
    except RuntimeError as outer:
        error = classify_error(outer)
        assert error.__cause__ is outer
    assert error.code is C.SERVER_ERROR

    group = ExceptionGroup("task group", [TimeoutError("slow")])
    assert classify_error(group).code is C.TIMEOUT


def test_tenacity_retry_error_is_unwrapped() -> None:
    tenacity = pytest.importorskip("tenacity")
    attempt = tenacity.Future(attempt_number=3)
    attempt.set_exception(ConnectionRefusedError("refused"))
    assert classify_error(tenacity.RetryError(attempt)).code is C.SERVER_ERROR


# --- identity, provider/model, redaction --------------------------------------------------------------------


def test_idempotent_for_resilience_errors() -> None:
    original = ResilienceError("limited", code=C.RATE_LIMITED, retry_after=2.0)
    same = classify_error(original, provider="openai", model="gpt-4o")
    assert same is original
    assert (same.provider, same.model) == ("openai", "gpt-4o")
    kept = ResilienceError("limited", code=C.RATE_LIMITED, provider="anthropic", model="claude")
    assert classify_error(kept, provider="openai", model="gpt-4o").provider == "anthropic"
    assert classify_error(classify_error(ValueError("x"))).code is C.UNKNOWN


def test_explicit_provider_and_model_override_the_exception() -> None:
    exc = LE.RateLimitError(message="limited", llm_provider="openai", model="gpt-4o")
    error = classify_error(exc, provider="azure", model="my-deployment")
    assert (error.provider, error.model) == ("azure", "my-deployment")


def test_secrets_never_reach_str_or_repr() -> None:
    key = "sk-proj-abcdef1234567890ABCDEF"
    token = "eyJhbGciOiJIUzI1NiJ9.secret-token-value"
    message = (
        f"AuthenticationError: OpenAIException - Incorrect API key provided: {key}. "
        f"Request headers: Authorization: Bearer {token}"
    )
    exc = LE.AuthenticationError(message=message, llm_provider="openai", model="gpt-4o")
    error = classify_error(exc)
    assert error.code is C.AUTHENTICATION
    for text in (str(error), repr(error), error.message):
        assert key not in text
        assert token not in text
        assert "abcdef1234567890" not in text
    assert "[REDACTED]" in str(error)


def test_secrets_in_reason_and_provider_code_are_redacted() -> None:
    key = "sk-live-0123456789abcdefghij"
    body = {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": f"API key not valid: {key}",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": f"API_KEY_INVALID Bearer {key}",
                }
            ],
        }
    }
    error = classify_http(400, body, provider="gemini")
    assert error.code is C.AUTHENTICATION
    assert error.reason is not None and "API_KEY_INVALID" in error.reason
    for text in (str(error), repr(error), error.reason, error.message):
        assert key not in text
    code_leak = classify_http(400, {"error": {"code": key, "message": "x"}})
    assert code_leak.provider_code == "[REDACTED]"
    assert key not in repr(code_leak)


# --- robustness ---------------------------------------------------------------------------------------------


def test_never_raises_on_hostile_exceptions() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

        @property
        def response(self) -> Any:
            raise RuntimeError("no response")

        @property
        def body(self) -> Any:
            raise RuntimeError("no body")

        @property
        def status_code(self) -> Any:
            raise RuntimeError("no status")

    error = classify_error(Hostile())
    assert isinstance(error, ResilienceError)
    assert error.code is C.UNKNOWN

    weird = Exception("x")
    weird.status_code = "teapot"  # type: ignore[attr-defined]
    weird.body = object()  # type: ignore[attr-defined]
    weird.response = SimpleNamespace(headers=42, content=b"\xff\xfe not json", status_code=None)  # type: ignore[attr-defined]
    assert classify_error(weird).code is C.UNKNOWN


@pytest.mark.parametrize(
    "body",
    [None, "", "not json", b"\x00\xff", "{broken", [], [1, 2], 42, {"error": None}, {"error": {"code": [1]}}],
)
def test_classify_http_tolerates_any_body(body: Any) -> None:
    assert classify_http(500, body).code is C.SERVER_ERROR
    assert classify_http(None, body).code is C.UNKNOWN


def test_classify_http_json_text_and_headers() -> None:
    text = json.dumps(anthropic_body("rate_limit_error", "slow down"))
    error = classify_http(429, text, provider="anthropic", headers=[("Retry-After", "30")])
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 30.0
    assert error.message == "slow down"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.none(), st.integers(min_value=-5, max_value=1000)),
    json_values,
    st.sampled_from(
        [
            None,
            "openai",
            "anthropic",
            "gemini",
            "bedrock",
            "azure",
            "mistral",
            "groq",
            "cohere",
            "deepseek",
            "x",
        ]
    ),
)
def test_classify_http_never_raises(status: int | None, body: Any, provider: str | None) -> None:
    error = classify_http(status, body, provider=provider)
    assert isinstance(error.code, StandardErrorCode)
    assert_flags(error)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.sampled_from([Exception, RuntimeError, ValueError, OSError, ConnectionError]))
def test_classify_error_never_raises(message: str, cls: type[Exception]) -> None:
    exc = cls(message)
    error = classify_error(exc)
    assert error.__cause__ is exc
    assert_flags(error)
    if cls is ConnectionError:
        # A connection failure is a server error, or a timeout when it says so ("connect timed out"):
        # either way the caller retries and may fall back.
        assert error.code in (C.SERVER_ERROR, C.TIMEOUT)
        assert error.retryable and error.fallbackable


def test_setting_dumps_and_local_file_errors_are_not_read_as_provider_words() -> None:
    exc = LE.InternalServerError(
        message="OpenAIException - boom. Debug: timeout=600, num_retries=0", llm_provider="openai", model="m"
    )
    assert classify_error(exc).code is C.SERVER_ERROR
    assert classify_error(FileNotFoundError(2, "No such file", "timeout.txt")).code is C.UNKNOWN
    assert classify_error(PermissionError(13, "Permission denied", "/etc/key")).code is C.UNKNOWN


def test_small_business_codes_are_not_statuses() -> None:
    error = classify_http(None, {"error_code": 110, "error_msg": "Access token invalid"})
    assert error.status_code is None
    assert error.code is C.UNKNOWN


def test_importing_the_errors_package_does_not_import_sdks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, langchain_ailib_resilience.errors as e; "
        "e.classify_error(ConnectionError('x')); "
        "sdks = ('litellm', 'openai', 'anthropic', 'botocore', 'aiohttp'); "
        "print(sorted(m for m in sdks if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_malformed_provider_body_is_a_server_error_not_a_caller_error() -> None:
    """LiteLLM reports a Gemini body it cannot parse as a 422 BadRequestError; the provider is at fault."""
    import httpx
    import litellm

    exc = litellm.exceptions.BadRequestError(
        message="litellm.BadRequestError: GeminiException - Error converting to valid response block="
        "Unterminated string starting at: line 1 column 90 (char 89).",
        model="gemini-x",
        llm_provider="gemini",
        response=httpx.Response(422, request=httpx.Request("POST", "http://127.0.0.1/v1beta/models/x")),
    )
    error = classify_error(exc)
    assert error.code is StandardErrorCode.SERVER_ERROR
    assert error.retryable
