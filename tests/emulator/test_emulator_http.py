"""The emulator on the wire: routes, provider formats, faults, streams, scripting and reporting (plain httpx)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from langchain_ailib_resilience.testing import FakeClock, Fault, ProviderEmulator, Success, parse_behaviour

PROVIDERS = ("openai", "anthropic", "gemini")


def _request(emu: ProviderEmulator, provider: str, model: str = "m", *, stream: bool = False) -> tuple[str, dict]:
    if provider == "openai":
        return f"{emu.openai_base}/chat/completions", {"model": model, "messages": [], "stream": stream}
    if provider == "anthropic":
        return f"{emu.base_url}/v1/messages", {"model": model, "messages": [], "max_tokens": 5, "stream": stream}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{emu.gemini_base}/models/{model}:{action}", {"contents": []}


_CLIENT = httpx.Client()  # one client: creating one per request costs ~0.1 s (TLS context)


def post(emu: ProviderEmulator, provider: str, model: str = "m", *, stream: bool = False, **kw) -> httpx.Response:
    url, body = _request(emu, provider, model, stream=stream)
    return _CLIENT.post(url, json=body, timeout=kw.pop("timeout", 5), **kw)


def sse_data(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and "[DONE]" not in line]


def stream_text(provider: str, text: str) -> str:
    events = [e for e in sse_data(text) if "error" not in e]
    if provider == "openai":
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    if provider == "anthropic":
        return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    return "".join(p["text"] for e in events for p in e["candidates"][0]["content"]["parts"])


# --- lifecycle and routes -------------------------------------------------------------------------------------


def test_start_stop_and_urls() -> None:
    emu = ProviderEmulator()
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    with emu:
        assert emu.running
        assert emu.base_url == f"http://127.0.0.1:{emu.port}"
        assert emu.openai_base.endswith("/v1") and emu.gemini_base.endswith("/v1beta")
        assert emu.anthropic_base == emu.base_url == emu.api_base("anthropic").rstrip("/")
        assert _CLIENT.get(f"{emu.base_url}/health").json() == {"status": "ok"}
        port = emu.port
    assert not emu.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_restart_after_stop_serves_again() -> None:
    emu = ProviderEmulator().start()
    emu.stop()
    emu.stop()  # idempotent
    with emu:
        assert post(emu, "openai").status_code == 200


def test_litellm_kwargs_turn_sdk_retries_off(provider_emulator: ProviderEmulator) -> None:
    kwargs = provider_emulator.litellm_kwargs("gemini", "gemini/flash")
    assert kwargs["model"] == "gemini/flash"
    assert kwargs["api_base"] == provider_emulator.gemini_base
    assert kwargs["max_retries"] == 0 and kwargs["num_retries"] == 0


def test_unknown_route_is_404_and_not_recorded(provider_emulator: ProviderEmulator) -> None:
    response = _CLIENT.post(f"{provider_emulator.base_url}/v2/unknown", json={})
    assert response.status_code == 404
    assert "error" in response.json()
    assert provider_emulator.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_body_follows_provider_format(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", Success("Hi there", prompt_tokens=3, completion_tokens=2))
    response = post(provider_emulator, provider)
    assert response.status_code == 200
    body = response.json()
    if provider == "openai":
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi there", "refusal": None}
        assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    elif provider == "anthropic":
        assert body["type"] == "message" and body["content"] == [{"type": "text", "text": "Hi there"}]
        assert body["usage"] == {"input_tokens": 3, "output_tokens": 2}
    else:
        assert body["candidates"][0]["content"]["parts"] == [{"text": "Hi there"}]
        assert body["usageMetadata"]["totalTokenCount"] == 5


def test_azure_deployment_route(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("dep", Fault.content_filter())
    response = _CLIENT.post(
        f"{provider_emulator.base_url}/openai/deployments/dep/chat/completions?api-version=2024-10-21",
        json={"messages": []},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_filter"
    assert response.json()["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert provider_emulator.requests[0].model == "dep"


# --- error formats ----------------------------------------------------------------------------------------------


def _error_shape(provider: str, body: dict) -> dict:
    """Assert the provider's documented error envelope and return its inner error."""
    if provider == "openai":
        assert set(body["error"]) >= {"message", "type", "param", "code"}
        return body["error"]
    if provider == "anthropic":
        assert body["type"] == "error"
        assert set(body["error"]) == {"type", "message"}
        return body["error"]
    assert set(body["error"]) >= {"code", "message", "status"}
    return body["error"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            Fault.rate_limit(),
            {
                "openai": (429, "rate_limit_exceeded"),
                "anthropic": (429, "rate_limit_error"),
                "gemini": (429, "RESOURCE_EXHAUSTED"),
            },
        ),
        (
            Fault.quota(),
            {
                "openai": (429, "insufficient_quota"),
                "anthropic": (400, "invalid_request_error"),
                "gemini": (429, "RESOURCE_EXHAUSTED"),
            },
        ),
        (
            Fault.server_error(500),
            {"openai": (500, "server_error"), "anthropic": (500, "api_error"), "gemini": (500, "INTERNAL")},
        ),
        (
            Fault.server_error(502),
            {"openai": (502, "server_error"), "anthropic": (502, "api_error"), "gemini": (502, "INTERNAL")},
        ),
        (
            Fault.server_error(503),
            {"openai": (503, "server_error"), "anthropic": (503, "api_error"), "gemini": (503, "UNAVAILABLE")},
        ),
        (
            Fault.overloaded(),
            {"openai": (503, "server_error"), "anthropic": (529, "overloaded_error"), "gemini": (503, "UNAVAILABLE")},
        ),
        (
            Fault.context_length(),
            {
                "openai": (400, "context_length_exceeded"),
                "anthropic": (400, "invalid_request_error"),
                "gemini": (400, "INVALID_ARGUMENT"),
            },
        ),
        (
            Fault.auth(),
            {
                "openai": (401, "invalid_api_key"),
                "anthropic": (401, "authentication_error"),
                "gemini": (400, "INVALID_ARGUMENT"),
            },
        ),
    ],
    ids=["rate_limit", "quota", "500", "502", "503", "overloaded", "context_length", "auth"],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_bodies_follow_provider_format(
    provider_emulator: ProviderEmulator, provider: str, fault: Fault, expected: dict
) -> None:
    provider_emulator.script("m", fault)
    response = post(provider_emulator, provider)
    status, code = expected[provider]
    assert response.status_code == status
    error = _error_shape(provider, response.json())
    field = {"openai": "code", "anthropic": "type", "gemini": "status"}[provider]
    if provider == "openai" and code == "server_error":
        field = "type"
    assert error[field] == code
    if provider == "gemini":
        assert error["code"] == status


def test_error_messages_carry_the_provider_wording(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("m", [Fault.quota(), Fault.context_length(), Fault.quota(), Fault.content_filter()])
    assert "credit balance is too low" in post(emu, "anthropic").json()["error"]["message"]
    assert "prompt is too long" in post(emu, "anthropic").json()["error"]["message"]
    quota = post(emu, "gemini").json()["error"]
    assert "exceeded your current quota" in quota["message"]
    violation = next(d for d in quota["details"] if d["@type"].endswith("QuotaFailure"))["violations"][0]
    assert "PerDay" in violation["quotaId"]
    assert "content filtering policy" in post(emu, "anthropic").json()["error"]["message"]


def test_openai_rate_limit_headers(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.rate_limit(0.25))
    response = post(provider_emulator, "openai")
    assert response.headers["retry-after"] == "0.25"
    assert response.headers["retry-after-ms"] == "250"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"] == "250ms"
    assert {"x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-reset-tokens"} <= set(
        response.headers
    )
    assert response.json()["error"]["type"] == "requests"


def test_anthropic_rate_limit_headers(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.rate_limit(3))
    before = datetime.now(UTC)
    response = post(provider_emulator, "anthropic")
    assert response.headers["retry-after"] == "3"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.fromisoformat(response.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert 1 <= (reset - before).total_seconds() <= 5
    for family in ("tokens", "input-tokens", "output-tokens"):
        assert f"anthropic-ratelimit-{family}-reset" in response.headers


def test_gemini_rate_limit_says_retry_delay_in_body(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.rate_limit(5))
    error = post(provider_emulator, "gemini").json()["error"]
    assert error["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]


def test_gemini_content_filter_is_a_blocked_200(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", [Fault.content_filter(), Fault.content_filter()])
    response = post(provider_emulator, "gemini")
    assert response.status_code == 200
    assert response.json()["promptFeedback"]["blockReason"] == "SAFETY"
    streamed = post(provider_emulator, "gemini", stream=True)
    assert sse_data(streamed.text)[0]["promptFeedback"]["blockReason"] == "SAFETY"
    assert [r.outcome for r in provider_emulator.requests] == ["content_filter", "content_filter"]


def test_server_error_with_retry_after(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.server_error(503, retry_after=2))
    assert post(provider_emulator, "openai").headers["retry-after"] == "2"
    with pytest.raises(ValueError):
        Fault.server_error(404)


def test_raw_http_fault(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.http(418, {"error": "teapot"}, {"x-custom": "1"}))
    response = post(provider_emulator, "anthropic")
    assert (response.status_code, response.json(), response.headers["x-custom"]) == (418, {"error": "teapot"}, "1")
    assert provider_emulator.requests[0].outcome == "http"


# --- transport faults ---------------------------------------------------------------------------------------------


def test_latency_delays_the_answer(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Success(latency=0.2))
    started = time.monotonic()
    assert post(provider_emulator, "openai").status_code == 200
    assert time.monotonic() - started >= 0.19


def test_hang_times_the_client_out_and_then_closes(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", [Fault.hang(), Fault.hang(0.1)])
    with pytest.raises(httpx.ReadTimeout):
        post(provider_emulator, "openai", timeout=0.2)
    with pytest.raises(httpx.RemoteProtocolError):  # held 0.1 s, then closed without an answer
        post(provider_emulator, "openai", timeout=2)
    assert [r.status for r in provider_emulator.requests] == [None, None]


def test_stop_releases_hanging_requests_quickly() -> None:
    emu = ProviderEmulator().start()
    emu.script("m", Fault.hang())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(emu, "openai", timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while emu.in_flight() == 0:
        time.sleep(0.01)
    started = time.monotonic()
    emu.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert len(errors) == 1


def test_reset_closes_without_answer(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.reset())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(provider_emulator, "anthropic")
    assert provider_emulator.requests[0].outcome == "reset"
    assert post(provider_emulator, "anthropic").status_code == 200  # the server is unharmed


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_json(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", [Fault.malformed(), Fault.malformed()])
    response = post(provider_emulator, provider)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    streamed = post(provider_emulator, provider, stream=True)
    assert streamed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        sse_data(streamed.text)


# --- streams ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_success(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", Success("one two three"))
    response = post(provider_emulator, provider, stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert stream_text(provider, response.text) == "one two three"
    if provider == "openai":
        assert response.text.rstrip().endswith("data: [DONE]")
    if provider == "anthropic":
        assert "event: message_stop" in response.text
    assert provider_emulator.requests[0].stream


def test_openai_stream_usage_only_when_asked(provider_emulator: ProviderEmulator) -> None:
    url, body = _request(provider_emulator, "openai", stream=True)
    plain = sse_data(_CLIENT.post(url, json=body).text)
    with_usage = sse_data(_CLIENT.post(url, json={**body, "stream_options": {"include_usage": True}}).text)
    assert not any(e.get("usage") for e in plain)
    assert with_usage[-1]["usage"]["completion_tokens"] == 5


def test_stream_chunk_delay(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Success("a b c", chunk_delay=0.05))
    started = time.monotonic()
    post(provider_emulator, "openai", stream=True)
    assert time.monotonic() - started >= 0.1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_drop_after_n_chunks(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", Fault.stream_drop(2, text="alpha beta gamma delta"))
    url, body = _request(provider_emulator, provider, stream=True)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), _CLIENT.stream("POST", url, json=body, timeout=5) as response:
        for part in response.iter_bytes():
            received += part
    assert stream_text(provider, received.decode()) == "alpha beta "


def test_stream_drop_on_a_plain_request_cuts_the_body(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.stream_drop())
    with pytest.raises(httpx.RemoteProtocolError):
        post(provider_emulator, "openai")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_error_event_after_n_chunks(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", Fault.stream_error(1, text="alpha beta"))
    response = post(provider_emulator, provider, stream=True)
    assert response.status_code == 200
    events = sse_data(response.text)
    assert stream_text(provider, response.text) == "alpha "
    last = events[-1]
    if provider == "anthropic":
        assert "event: error" in response.text
        assert last == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    elif provider == "openai":
        assert last["error"]["type"] == "server_error"
    else:
        assert last["error"]["status"] == "UNAVAILABLE"


def test_stream_error_on_a_plain_request_is_the_http_error(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.stream_error(error=Fault.rate_limit(0.5)))
    response = post(provider_emulator, "openai")
    assert (response.status_code, response.headers["retry-after"]) == (429, "0.5")
    provider_emulator.script("m", Fault.stream_error())
    assert post(provider_emulator, "openai", stream=True).status_code == 200
    assert [r.status for r in provider_emulator.requests] == [429, 200]
    with pytest.raises(ValueError):
        Fault.stream_error(error=Fault.reset())


# --- scripting ----------------------------------------------------------------------------------------------------


def test_script_is_a_queue_then_default(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("openai/m", [Fault.server_error(500), Fault.rate_limit(0.1)])  # LiteLLM prefix dropped
    emu.script("m", Success("third"))
    emu.set_default("m", Success("default"))
    assert emu.pending("m") == 3
    codes = [post(emu, "openai").status_code for _ in range(3)]
    assert codes == [500, 429, 200]
    assert post(emu, "openai").json()["choices"][0]["message"]["content"] == "default"
    assert [r.source for r in emu.requests] == ["script", "script", "script", "default"]
    assert emu.pending("m") == 0


def test_scripts_are_per_model_and_shared_across_formats(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("a", Fault.overloaded())
    emu.set_default(None, Success("everyone"))
    assert post(emu, "openai", "b").status_code == 200
    assert post(emu, "anthropic", "a").status_code == 529
    assert post(emu, "gemini", "a").json()["candidates"][0]["content"]["parts"][0]["text"] == "everyone"


def test_token_bucket_rate_limit() -> None:
    clock = FakeClock()
    with ProviderEmulator(clock=clock.now) as emu:
        emu.rate_limit("m", rps=2, burst=2)
        emu.script("m", Success("scripted"))
        statuses = [post(emu, "openai").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        rejected = emu.requests[-1]
        assert (rejected.source, rejected.outcome, rejected.status) == ("bucket", "rate_limit", 429)
        assert emu.pending("m") == 0  # the script answered the first request; the 429 consumed nothing
        assert post(emu, "openai").headers["retry-after"] == "0.5"  # one token every 0.5 s
        clock.advance(0.2)
        assert post(emu, "anthropic").headers["retry-after"] == "0.3"
        clock.advance(0.3)
        assert post(emu, "openai").status_code == 200
        assert post(emu, "openai", "other").status_code == 200  # other models are not limited


def test_account_wide_bucket_under_concurrency() -> None:
    clock = FakeClock()
    with ProviderEmulator(clock=clock.now) as emu:
        emu.rate_limit(None, rps=20, burst=5)
        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(lambda i: post(emu, "anthropic", f"m{i % 3}").status_code, range(40)))
        assert (codes.count(200), codes.count(429)) == (5, 35)
        clock.advance(0.1)
        assert [post(emu, "gemini").status_code for _ in range(3)] == [200, 200, 429]


def test_token_bucket_refills_in_real_time(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.rate_limit("m", rps=1, burst=1)
    assert post(emu, "anthropic").status_code == 200
    rejected = post(emu, "anthropic")
    assert rejected.status_code == 429
    retry_after = float(rejected.headers["retry-after"])
    assert 0 < retry_after <= 1
    time.sleep(retry_after + 0.02)
    assert post(emu, "anthropic").status_code == 200


def test_fault_rate_is_seeded_and_roughly_right() -> None:
    def run() -> list[str]:
        with ProviderEmulator() as emu:
            emu.set_fault_rate(0.3, [Fault.server_error(500), Fault.rate_limit(0.1)], seed=7)
            for _ in range(200):
                post(emu, "openai")
            return [r.outcome for r in emu.requests]

    first, second = run(), run()
    assert first == second
    failures = sum(outcome != "success" for outcome in first)
    assert 30 <= failures <= 90
    assert {"server_error", "rate_limit", "success"} == set(first)


def test_scripts_win_over_random_faults(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.set_fault_rate(1.0, seed=1)
    provider_emulator.script("m", Success())
    assert post(provider_emulator, "openai").status_code == 200
    assert provider_emulator.requests[0].source == "script"
    assert post(provider_emulator, "openai").status_code != 200
    with pytest.raises(ValueError):
        provider_emulator.set_fault_rate(1.5)


# --- reporting ----------------------------------------------------------------------------------------------------


def test_records_describe_each_request(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("g", Fault.quota())
    started = time.monotonic()
    post(emu, "openai", "o")
    post(emu, "gemini", "g", stream=True)
    first, second = emu.requests
    assert (first.model, first.provider, first.path, first.stream, first.status) == (
        "o",
        "openai",
        "/v1/chat/completions",
        False,
        200,
    )
    assert (second.model, second.provider, second.stream, second.outcome, second.status) == (
        "g",
        "gemini",
        True,
        "quota",
        429,
    )
    assert started <= first.timestamp <= second.timestamp <= time.monotonic()
    assert first.body["model"] == "o"
    assert emu.count() == 2 and emu.count("g") == 1 and emu.count("gemini/g") == 1
    assert emu.count(outcome="quota") == 1 and emu.count("o", outcome="quota") == 0


def test_clear_requests_keeps_scripts_and_reset_clears_all(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("m", [Fault.auth(), Fault.auth()])
    emu.rate_limit("m", 1, 1)
    post(emu, "openai")
    emu.clear_requests()
    assert emu.requests == [] and emu.pending("m") == 1
    emu.reset()
    assert emu.pending("m") == 0
    assert [post(emu, "openai").status_code for _ in range(2)] == [200, 200]  # no bucket, no script


def test_concurrent_requests_are_all_counted_and_scripts_used_once(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.script("m", [Fault.server_error(500)] * 25)
    emu.set_default("m", Success(latency=0.05))
    url, body = _request(emu, "openai")
    with httpx.Client(limits=httpx.Limits(max_connections=50)) as client, ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda _: client.post(url, json=body, timeout=10).status_code, range(100)))
    assert codes.count(500) == 25 and codes.count(200) == 75
    assert emu.count("m") == 100
    assert sorted(r.index for r in emu.requests) == list(range(100))
    assert 1 < emu.peak_in_flight() <= 50
    assert emu.peak_in_flight("m") == emu.peak_in_flight()
    assert emu.in_flight() == 0


# --- text specs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ok", Success()),
        ("ok:Hi", Success(text="Hi")),
        ("latency:0.5", Success(latency=0.5)),
        ("429", Fault.rate_limit()),
        ("rate_limit:0.5", Fault.rate_limit(0.5)),
        ("503", Fault.server_error(503)),
        ("server-error:502", Fault.server_error(502)),
        ("529", Fault.server_error(529)),
        ("overloaded", Fault.overloaded()),
        ("quota", Fault.quota()),
        ("context_length", Fault.context_length()),
        ("content_filter", Fault.content_filter()),
        ("auth", Fault.auth()),
        ("hang", Fault.hang()),
        ("hang:2", Fault.hang(2)),
        ("reset", Fault.reset()),
        ("malformed", Fault.malformed()),
        ("stream_drop:3", Fault.stream_drop(3)),
        ("stream_error", Fault.stream_error(2)),
    ],
)
def test_parse_behaviour(spec: str, expected: object) -> None:
    assert parse_behaviour(spec) == expected


@pytest.mark.parametrize("spec", ["nope", "429:soon", "quota:1", "700", ""])
def test_parse_behaviour_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_behaviour(spec)
