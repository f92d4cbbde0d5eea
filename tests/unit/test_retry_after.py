"""parse_retry_after and headers_of: every way a provider says how long to wait."""

from __future__ import annotations

import math
from email.utils import formatdate

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_ailib_resilience.errors.retry_after import headers_of, parse_duration, parse_retry_after

NOW = 1_900_000_000.0  # a fixed wall clock: 2030-03-17T17:46:40Z
REQ = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


# --- retry-after and retry-after-ms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (" 30 ", 30.0)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after({"retry-after": value}) == expected


def test_retry_after_http_date_is_relative_to_now() -> None:
    date = formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=NOW) == pytest.approx(30.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    date = formatdate(NOW - 3600, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == 0.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after": "7", "retry-after-ms": "1500"}) == 1.5


@pytest.mark.parametrize("value", ["-5", "NaN", "nan", "inf", "soon", "", "5 seconds", "Thu, 99 Foo 2030"])
def test_unusable_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None


def test_negative_retry_after_ms_falls_through_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "-1", "retry-after": "4"}) == 4.0


# --- header containers --------------------------------------------------------------------------------------


def test_lookup_is_case_insensitive_in_a_plain_dict() -> None:
    assert parse_retry_after({"RETRY-AFTER": "3"}) == 3.0


def test_httpx_headers() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "9"})) == 9.0


def test_list_of_pairs_including_bytes() -> None:
    assert parse_retry_after([("Content-Type", "json"), ("Retry-After", "2")]) == 2.0
    assert parse_retry_after([(b"retry-after", b"11")]) == 11.0


def test_aiohttp_style_multidict() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDictProxy(multidict.CIMultiDict({"Retry-After": "6"}))
    assert parse_retry_after(headers) == 6.0


@pytest.mark.parametrize("headers", [None, {}, [], "retry-after: 5", 42, object()])
def test_no_or_odd_headers_give_none(headers: object) -> None:
    assert parse_retry_after(headers) is None


# --- OpenAI / Groq durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("2m59.56s", 179.56),
        ("7.66s", 7.66),
        ("500us", 0.0005),
        ("12", 12.0),
        ("0.25", 0.25),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1x", "s", "1m2", "-3s", "abc", "1.2.3s"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_reset_of_the_exhausted_limit() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-reset-tokens": "1.5s",
    }
    assert parse_retry_after(headers) == 1.5


def test_openai_reset_without_remaining_takes_the_longest() -> None:
    headers = {"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "6m0s"}
    assert parse_retry_after(headers) == 360.0


def test_retry_after_beats_reset_headers() -> None:
    assert parse_retry_after({"retry-after": "2", "x-ratelimit-reset-tokens": "6m0s"}) == 2.0


def test_generic_reset_seconds_and_epoch() -> None:
    assert parse_retry_after({"x-ratelimit-reset": "42"}, now=NOW) == 42.0
    assert parse_retry_after({"x-ratelimit-reset": str(int(NOW + 15))}, now=NOW) == 15.0
    assert parse_retry_after({"ratelimit-reset": "8"}) == 8.0


# --- Anthropic RFC 3339 resets ------------------------------------------------------------------------------


def test_anthropic_reset_timestamps() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "10",
        "anthropic-ratelimit-requests-reset": "2030-03-17T17:47:40Z",  # NOW + 60
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2030-03-17T17:46:52.5Z",  # NOW + 12.5
    }
    assert parse_retry_after(headers, now=NOW) == pytest.approx(12.5)


def test_anthropic_reset_with_offset_and_no_remaining() -> None:
    headers = {"anthropic-ratelimit-tokens-reset": "2030-03-17T18:46:50+01:00"}  # NOW + 10
    assert parse_retry_after(headers, now=NOW) == pytest.approx(10.0)


def test_anthropic_reset_in_the_past_is_zero() -> None:
    assert parse_retry_after({"anthropic-ratelimit-tokens-reset": "2020-01-01T00:00:00Z"}, now=NOW) == 0.0


# --- Google RetryInfo in the body ---------------------------------------------------------------------------


def _google_body(delay: object) -> dict[str, object]:
    return {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("5s", 5.0), ("0.5s", 0.5), ("39s", 39.0), ({"seconds": 3, "nanos": 500_000_000}, 3.5)],
)
def test_gemini_retry_info(delay: object, seconds: float) -> None:
    assert parse_retry_after(None, body=_google_body(delay)) == pytest.approx(seconds)


def test_gemini_retry_info_in_json_text_and_lists() -> None:
    import json

    text = json.dumps(_google_body("7s"))
    assert parse_retry_after(None, body=text) == 7.0
    assert parse_retry_after(None, body=[{"unrelated": 1}, _google_body("8s")]) == 8.0


def test_header_beats_body_beats_message() -> None:
    body = _google_body("5s")
    message = "Please retry in 9s."
    assert parse_retry_after({"retry-after": "2"}, body=body, message=message) == 2.0
    assert parse_retry_after({}, body=body, message=message) == 5.0
    assert parse_retry_after({}, body={"error": {}}, message=message) == 9.0


# --- message hints ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        (
            "Rate limit reached for gpt-4o on tokens per min (TPM). Please try again in 5.289s. Visit ...",
            5.289,
        ),
        ("Requests ... have exceeded call rate limit. Please retry after 20 seconds.", 20.0),
        ("Quota exceeded for metric ... Please retry in 1m2s.", 62.0),
        ("Please try again in 20ms.", 0.02),
        ("No deployments available for selected model, Try again in 60 seconds.", 60.0),
        ("please try again in 6m0s", 360.0),
        ("Try again in 5 minutes", 300.0),
        ("retry after 3", 3.0),
        ("Please retry in 1 hour", 3600.0),
    ],
)
def test_message_hints(message: str, seconds: float) -> None:
    assert parse_retry_after(None, message=message) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "message",
    ["Please try again later.", "Rate limit exceeded", "retry in -5s", "", "try again in a moment"],
)
def test_messages_without_a_usable_hint(message: str) -> None:
    assert parse_retry_after(None, message=message) is None


# --- headers_of ---------------------------------------------------------------------------------------------


def test_headers_of_litellm_vendor_429_reads_response_headers() -> None:
    import litellm

    response = httpx.Response(429, headers={"retry-after": "7", "x-ratelimit-reset-tokens": "1s"}, request=REQ)
    exc = litellm.exceptions.RateLimitError(
        message="OpenAIException - Rate limit reached",
        llm_provider="openai",
        model="gpt-4o",
        response=response,
    )
    assert exc.headers is None  # LiteLLM keeps vendor headers off e.headers
    headers = headers_of(exc)
    assert headers["retry-after"] == "7"
    assert parse_retry_after(headers) == 7.0


def test_headers_of_prefers_litellm_response_headers_over_the_response() -> None:
    import litellm

    exc = litellm.exceptions.InternalServerError(
        message="AnthropicError - overloaded",
        llm_provider="anthropic",
        model="claude",
        provider_status_code=529,
    )
    exc.litellm_response_headers = httpx.Headers({"Retry-After": "3"})
    assert headers_of(exc) == {"retry-after": "3"}


def test_headers_of_openai_sdk_error() -> None:
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(429, headers={"Retry-After-Ms": "250"}, request=request)
    exc = openai.RateLimitError("rate limited", response=response, body=None)
    assert headers_of(exc)["retry-after-ms"] == "250"


def test_headers_of_botocore_client_error() -> None:
    botocore_exceptions = pytest.importorskip("botocore.exceptions")
    exc = botocore_exceptions.ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Too many requests"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {"Retry-After": "4"}},
        },
        "Converse",
    )
    assert headers_of(exc) == {"retry-after": "4"}


def test_headers_of_aiohttp_response_error() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    exc = aiohttp.ClientResponseError(None, (), status=503, headers={"Retry-After": "12"})  # type: ignore[arg-type]
    assert headers_of(exc) == {"retry-after": "12"}


def test_headers_of_merges_with_earlier_sources_winning() -> None:
    class Weird(Exception):
        headers = {"Retry-After": "1"}
        litellm_response_headers = {"retry-after": "2", "x-extra": "yes"}
        response_headers = [("x-last", "z")]

    assert headers_of(Weird()) == {"retry-after": "1", "x-extra": "yes", "x-last": "z"}


def test_headers_of_survives_hostile_attributes() -> None:
    class Hostile(Exception):
        @property
        def headers(self) -> object:
            raise RuntimeError("no")

        @property
        def response(self) -> object:
            raise RuntimeError("no")

    assert headers_of(Hostile()) == {}
    assert headers_of(ValueError("plain")) == {}


# --- properties ---------------------------------------------------------------------------------------------


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "retry-after",
                "retry-after-ms",
                "x-ratelimit-reset-requests",
                "x-ratelimit-reset-tokens",
                "x-ratelimit-remaining-tokens",
                "anthropic-ratelimit-tokens-reset",
                "x-ratelimit-reset",
            ]
        ),
        st.text(max_size=30),
    ),
    st.text(max_size=80),
)
def test_never_raises_and_is_never_negative(headers: dict[str, str], message: str) -> None:
    result = parse_retry_after(headers, message=message, now=NOW)
    assert result is None or (math.isfinite(result) and result >= 0)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_retry_after_round_trips_seconds(seconds: float) -> None:
    assert parse_retry_after({"retry-after": repr(seconds)}) == pytest.approx(seconds)
