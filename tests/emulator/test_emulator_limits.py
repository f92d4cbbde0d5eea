"""The emulator's limits: request and token buckets on its clock, and the headers that state them.

Every header form is read back with the package's own parser (``errors.rate_headers``): what the emulator sends
is exactly what a client learning limits from headers will see. Time is a ``FakeClock``; nothing sleeps.
"""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_ailib_resilience.errors.rate_headers import parse_rate_limit_headers
from langchain_ailib_resilience.errors.retry_after import parse_duration, parse_retry_after
from langchain_ailib_resilience.testing import FakeClock, Fault, ProviderEmulator
from langchain_ailib_resilience.testing.emulator import DEFAULT_OUTPUT_TOKENS
from langchain_ailib_resilience.testing.emulator._headers import go_duration
from langchain_ailib_resilience.testing.emulator._scheduling import request_cost

_CLIENT = httpx.Client()
RATE_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")


def openai(emu: ProviderEmulator, model: str = "m", *, max_tokens: int | None = None, text: str = "hi", **body):
    payload = {"model": model, "messages": [{"role": "user", "content": text}], **body}
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    return _CLIENT.post(f"{emu.openai_base}/chat/completions", json=payload, timeout=5)


def anthropic(emu: ProviderEmulator, model: str = "m", *, max_tokens: int = 5, text: str = "hi") -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
    return _CLIENT.post(f"{emu.base_url}/v1/messages", json=payload, timeout=5)


def azure(emu: ProviderEmulator, model: str = "m", *, max_tokens: int | None = None) -> httpx.Response:
    payload: dict = {"messages": [{"role": "user", "content": "hi"}]}
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    url = f"{emu.base_url}/openai/deployments/{model}/chat/completions?api-version=2024-10-21"
    return _CLIENT.post(url, json=payload, timeout=5)


def gemini(emu: ProviderEmulator, model: str = "m") -> httpx.Response:
    return _CLIENT.post(f"{emu.gemini_base}/models/{model}:generateContent", json={"contents": []}, timeout=5)


def rate_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith(RATE_HEADER_PREFIXES)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock):
    with ProviderEmulator(clock=clock.now) as emulator:
        yield emulator


# --- OpenAI -----------------------------------------------------------------------------------------------------


def test_openai_headers_on_every_answer_read_back_by_the_parser(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=20, burst=5, tokens_per_minute=60_000, token_burst=1_000)
    first = openai(emu, max_tokens=100)  # "user" + "hi": 2 prompt tokens, + 100
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "1200"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert first.headers["x-ratelimit-reset-requests"] == "50ms"  # one request back at 20/s
    assert first.headers["x-ratelimit-limit-tokens"] == "60000"
    assert first.headers["x-ratelimit-remaining-tokens"] == "898"
    assert first.headers["x-ratelimit-reset-tokens"] == "102ms"  # 102 tokens at 1000/s
    parsed = parse_rate_limit_headers(first.headers)
    assert parsed is not None and parsed.source == "openai"
    assert parsed.requests is not None and parsed.tokens is not None
    assert (parsed.requests.limit, parsed.requests.remaining, parsed.requests.reset) == (1200, 4, 0.05)
    assert (parsed.tokens.limit, parsed.tokens.remaining) == (60_000, 898)
    assert parsed.tokens.reset == pytest.approx(0.102)
    assert parsed.retry_after is None
    clock.advance(0.02)
    second = parse_rate_limit_headers(openai(emu, max_tokens=100).headers)
    assert second is not None and second.requests is not None
    assert second.requests.remaining == 3  # 4 + 0.4 refilled - 1
    assert second.requests.reset == pytest.approx(0.08, abs=1e-3)  # 1.6 short of 5, at 20/s


def test_openai_resets_are_go_durations_rounded_up() -> None:
    assert [go_duration(s) for s in (0.02, 0.0201, 1, 1.5, 17.28, 360, 61.25, 0)] == [
        "20ms",
        "21ms",
        "1s",
        "1.5s",
        "17.28s",
        "6m0s",
        "1m1.25s",
        "0ms",
    ]


@given(st.floats(min_value=0, max_value=7200, allow_nan=False))
def test_go_duration_round_trips_never_early(seconds: float) -> None:
    parsed = parse_duration(go_duration(seconds))
    assert parsed is not None
    assert seconds - 1e-9 <= parsed <= seconds + 1e-3 + 1e-9


def test_429_over_the_request_limit_says_when_to_come_back(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=2, burst=1)
    assert openai(emu).status_code == 200
    clock.advance(0.2)
    refused = openai(emu)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "0.3"
    assert refused.headers["retry-after-ms"] == "300"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "300ms"
    parsed = parse_rate_limit_headers(refused.headers)
    assert parsed is not None and parsed.requests is not None
    assert parsed.requests.exhausted and parsed.retry_after == pytest.approx(0.3)
    assert parse_retry_after(refused.headers) == pytest.approx(0.3)
    assert "requests per min (RPM): Limit 120" in refused.json()["error"]["message"]
    assert emu.requests[-1].source == "bucket"


def test_strict_spacing_answers_an_early_request_with_how_early(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=20, burst=1)
    assert openai(emu).status_code == 200
    clock.advance(0.047)  # 3 ms before the 50 ms spacing
    early = openai(emu)
    assert early.status_code == 429
    assert early.headers["retry-after-ms"] == "3"
    clock.advance(0.003)
    assert openai(emu).status_code == 200  # the early one took nothing: the spacing counts from the last admitted
    clock.advance(0.0495)
    assert openai(emu).headers["retry-after-ms"] == "1"  # half a millisecond early still says so, rounded up


# --- tokens -----------------------------------------------------------------------------------------------------


def test_tokens_count_the_prompt_and_max_tokens_at_arrival(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=100, burst=100, tokens_per_minute=60_000, token_burst=1_000)
    prompt = "x" * 396  # with "user": 100 tokens by the emulator's estimate
    assert [openai(emu, text=prompt, max_tokens=300).status_code for _ in range(3)] == [200, 200, 429]
    refused = emu.requests[-1]
    assert (refused.tokens, refused.source) == (400, "bucket")
    response = openai(emu, text=prompt, max_tokens=300)
    assert response.status_code == 429
    assert response.headers["retry-after-ms"] == "200"  # 200 tokens left, 400 needed, at 1000/s
    body = response.json()["error"]
    assert "tokens per min (TPM): Limit 60000" in body["message"] and body["type"] == "tokens"
    assert response.headers["x-ratelimit-remaining-requests"] == "98"  # a refused request costs no request
    clock.advance(0.2)
    assert openai(emu, text=prompt, max_tokens=300).status_code == 200


def test_a_request_without_max_tokens_is_charged_the_default(emu: ProviderEmulator) -> None:
    emu.rate_limit("m", tokens_per_minute=6_000, token_burst=100)
    response = openai(emu)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-tokens"] == str(100 - 2 - DEFAULT_OUTPUT_TOKENS)
    assert "x-ratelimit-limit-requests" not in response.headers  # only the limits that exist are stated


def test_request_cost_estimate() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "y" * 41}]}], "max_tokens": 7}
    assert (request_cost(body).input_tokens, request_cost(body).output_tokens) == (13, 7)  # 49 characters
    assert request_cost({"messages": [], "max_completion_tokens": 9}).output_tokens == 9
    assert request_cost({"contents": [], "generationConfig": {"maxOutputTokens": 3}}).output_tokens == 3
    assert request_cost({"max_tokens": True}).output_tokens == DEFAULT_OUTPUT_TOKENS
    assert request_cost({"system": "abcd", "messages": []}).input_tokens == 1


def test_a_request_larger_than_the_token_bucket_waits_for_a_full_one(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", tokens_per_minute=6_000, token_burst=100)
    assert openai(emu, max_tokens=500).status_code == 200  # charged the whole bucket, not refused forever
    refused = openai(emu, max_tokens=500)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    clock.advance(1)
    assert openai(emu, max_tokens=500).status_code == 200


def test_account_limit_refusal_refunds_the_model_bucket(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=10, burst=3)
    emu.rate_limit(None, rps=1, burst=1)
    assert openai(emu).status_code == 200
    refused = openai(emu)
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "2"  # the model's bucket got its token back


# --- Anthropic and Azure ----------------------------------------------------------------------------------------


def test_anthropic_headers_read_back_by_the_parser(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit(
        "m",
        rps=1,
        burst=50,
        tokens_per_minute=400_000,
        input_tokens_per_minute=300_000,
        output_tokens_per_minute=90_000,
    )
    before = time.time()
    response = anthropic(emu, max_tokens=4_400, text="z" * 3_996)  # with "user": 1,000 prompt tokens
    assert response.status_code == 200
    headers = response.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "60"
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    # Token counts left are rounded to the nearest thousand, as Anthropic does.
    assert headers["anthropic-ratelimit-tokens-remaining"] == "61000"  # 66,666 - 5,400
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "49000"  # 50,000 - 1,000
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "11000"  # 15,000 - 4,400
    parsed = parse_rate_limit_headers(headers, now=before)
    assert parsed is not None and parsed.source == "anthropic"
    assert parsed.requests is not None and parsed.output_tokens is not None
    assert (parsed.requests.limit, parsed.requests.remaining) == (60, 49)
    assert parsed.output_tokens.limit == 90_000
    # RFC 3339 in whole seconds, rounded up: never earlier than the bucket is full again.
    assert parsed.requests.reset is not None and 1 <= parsed.requests.reset <= 2.5
    assert parsed.output_tokens.reset is not None and 2.9 <= parsed.output_tokens.reset <= 4.5  # 4,400 at 1,500/s
    assert "retry-after" not in headers


def test_anthropic_429_says_retry_after_in_seconds(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("m", rps=4, burst=1)
    assert anthropic(emu).status_code == 200
    refused = anthropic(emu)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "0.25"
    assert "retry-after-ms" not in refused.headers
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "240 requests per minute" in refused.json()["error"]["message"]


def test_azure_route_sends_azure_headers(emu: ProviderEmulator, clock: FakeClock) -> None:
    emu.rate_limit("dep", rps=1, burst=10, tokens_per_minute=60_000)
    response = azure(emu, "dep", max_tokens=998)
    assert response.status_code == 200
    assert rate_headers(response) == {
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-remaining-tokens": "9000",  # 10 s of 60,000/min, less 2 + 998
    }
    parsed = parse_rate_limit_headers(response.headers)
    assert parsed is not None and parsed.source == "azure"
    assert parsed.tokens is not None and (parsed.tokens.remaining, parsed.tokens.limit) == (9000, None)
    for _ in range(9):
        azure(emu, "dep")
    refused = azure(emu, "dep")
    assert refused.status_code == 429
    assert refused.headers["retry-after-ms"] == "1000"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert parse_rate_limit_headers(refused.headers).retry_after == 1.0  # type: ignore[union-attr]


def test_header_form_is_chosen_per_model(emu: ProviderEmulator) -> None:
    emu.rate_limit("as-anthropic", rps=5, burst=1, headers="anthropic")
    emu.rate_limit("as-azure", rps=5, burst=1, headers="azure")
    emu.rate_limit("bare", rps=5, burst=1, headers="none")
    emu.rate_limit("retry-only", rps=5, burst=1, headers="retry-after")
    assert set(rate_headers(openai(emu, "as-anthropic"))) == {
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    }
    assert rate_headers(openai(emu, "as-azure")) == {"x-ratelimit-remaining-requests": "0"}
    assert rate_headers(openai(emu, "bare")) == {}
    refused = openai(emu, "bare")
    assert refused.status_code == 429 and rate_headers(refused) == {}  # 429 feedback only
    assert rate_headers(openai(emu, "retry-only")) == {}
    assert rate_headers(openai(emu, "retry-only")) == {"retry-after": "0.2", "retry-after-ms": "200"}


def test_gemini_states_no_limits_in_headers_but_retry_info_in_the_body(emu: ProviderEmulator) -> None:
    emu.rate_limit("g", rps=1, burst=1)
    assert rate_headers(gemini(emu, "g")) == {}
    refused = gemini(emu, "g")
    assert refused.status_code == 429 and rate_headers(refused) == {}
    assert refused.json()["error"]["details"][0]["retryDelay"] == "1s"


# --- what every answer of a limited model carries ----------------------------------------------------------------


def test_scripted_faults_and_streams_carry_the_limits_too(emu: ProviderEmulator) -> None:
    emu.rate_limit("m", rps=10, burst=10)
    emu.script("m", [Fault.server_error(500), Fault.rate_limit(2)])
    assert openai(emu).headers["x-ratelimit-remaining-requests"] == "9"
    scripted = openai(emu)
    assert scripted.status_code == 429 and scripted.headers["retry-after-ms"] == "2000"
    assert scripted.headers["x-ratelimit-remaining-requests"] == "8"  # the real state, not a canned one
    with _CLIENT.stream(
        "POST", f"{emu.openai_base}/chat/completions", json={"model": "m", "messages": [], "stream": True}
    ) as stream:
        assert stream.headers["x-ratelimit-remaining-requests"] == "7"
        assert stream.headers["content-type"].startswith("text/event-stream")
        stream.read()


def test_a_model_without_limits_states_none(emu: ProviderEmulator) -> None:
    emu.rate_limit("other", rps=1)
    assert rate_headers(openai(emu, "m")) == {}
    emu.script("m", Fault.rate_limit(0.5))
    canned = openai(emu, "m")  # an unlimited model's scripted 429 keeps its canned headers
    assert canned.headers["retry-after"] == "0.5" and "x-ratelimit-limit-tokens" in canned.headers


def test_reset_forgets_the_limits(emu: ProviderEmulator) -> None:
    emu.rate_limit("m", rps=1, burst=1)
    openai(emu)
    emu.reset()
    assert openai(emu).status_code == 200 and rate_headers(openai(emu)) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs rps"),
        ({"rps": 0}, "rps must be positive"),
        ({"rps": 1, "burst": 0}, "burst"),
        ({"tokens_per_minute": -5}, "tokens_per_minute"),
        ({"tokens_per_minute": 5, "token_burst": 0.5}, "token_burst"),
        ({"rps": 1, "headers": "grpc"}, "headers"),
    ],
)
def test_rate_limit_rejects_nonsense(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProviderEmulator().rate_limit("m", **kwargs)


def test_token_bucket_starts_full_with_ten_seconds_of_its_limit(emu: ProviderEmulator) -> None:
    emu.rate_limit("m", tokens_per_minute=6_000)
    assert openai(emu, max_tokens=1).headers["x-ratelimit-remaining-tokens"] == str(1_000 - 3)
