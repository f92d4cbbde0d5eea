"""LiteLLM and langchain-litellm against the emulator: the real HTTP mapping of every fault.

The tables pin what LiteLLM 1.110 makes of each provider's answer (class and status), which is exactly what
the error classifier has to untangle: the same fault arrives as different classes per provider.
"""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm")

from litellm import exceptions as lx  # noqa: E402

from langchain_ailib_resilience.errors.classify import classify_error  # noqa: E402
from langchain_ailib_resilience.errors.codes import StandardErrorCode as C  # noqa: E402
from langchain_ailib_resilience.testing import Behaviour, FakeClock, Fault, ProviderEmulator, Success  # noqa: E402

MESSAGES = [{"role": "user", "content": "hi"}]
PROVIDERS = ("openai", "anthropic", "gemini")
SHORT_TIMEOUT = 0.2  # for hangs: the client gives up, the emulator is released at stop()

FAULTS: dict[str, Behaviour] = {
    "rate_limit": Fault.rate_limit(0.5),
    "quota": Fault.quota(),
    "500": Fault.server_error(500),
    "502": Fault.server_error(502),
    "503": Fault.server_error(503),
    "529": Fault.server_error(529),
    "overloaded": Fault.overloaded(),
    "context_length": Fault.context_length(),
    "content_filter": Fault.content_filter(),
    "auth": Fault.auth(),
    "hang": Fault.hang(),
    "reset": Fault.reset(),
    "malformed": Fault.malformed(),
}

# What this package's classifier must make of them, whatever the provider and class.
CLASSIFIED: dict[str, C] = {
    "rate_limit": C.RATE_LIMITED,
    "quota": C.QUOTA_EXHAUSTED,
    "500": C.SERVER_ERROR,
    "502": C.SERVER_ERROR,
    "503": C.OVERLOADED,
    "529": C.OVERLOADED,
    "overloaded": C.OVERLOADED,
    "context_length": C.REQUEST_TOO_LARGE,
    "auth": C.AUTHENTICATION,
    "hang": C.TIMEOUT,
    "reset": C.SERVER_ERROR,
}

# (exception class, status_code) per fault and provider, as LiteLLM raises them on a plain call.
EXPECTED: dict[str, dict[str, tuple[type[Exception], int]]] = {
    "rate_limit": dict.fromkeys(PROVIDERS, (lx.RateLimitError, 429)),
    "quota": {
        "openai": (lx.RateLimitError, 429),
        "anthropic": (lx.BadRequestError, 400),
        "gemini": (lx.RateLimitError, 429),
    },
    "500": dict.fromkeys(PROVIDERS, (lx.InternalServerError, 500)),
    "502": {
        "openai": (lx.BadGatewayError, 502),
        "anthropic": (lx.BadGatewayError, 502),
        "gemini": (lx.APIConnectionError, 500),
    },
    "503": {
        "openai": (lx.ServiceUnavailableError, 503),
        "anthropic": (lx.ServiceUnavailableError, 503),
        "gemini": (lx.InternalServerError, 500),
    },
    "529": {
        "openai": (lx.APIError, 529),
        "anthropic": (lx.InternalServerError, 500),  # provider_status_code=529
        "gemini": (lx.InternalServerError, 500),
    },
    "overloaded": {
        "openai": (lx.ServiceUnavailableError, 503),
        "anthropic": (lx.InternalServerError, 500),
        "gemini": (lx.InternalServerError, 500),
    },
    "context_length": dict.fromkeys(PROVIDERS, (lx.ContextWindowExceededError, 400)),
    "content_filter": {
        "openai": (lx.BadRequestError, 400),
        "anthropic": (lx.ContentPolicyViolationError, 400),
        # gemini: not an error at all, see test_gemini_content_filter_is_a_finish_reason
    },
    "auth": dict.fromkeys(PROVIDERS, (lx.AuthenticationError, 401)),
    "hang": dict.fromkeys(PROVIDERS, (lx.Timeout, 408)),
    "reset": {
        "openai": (lx.InternalServerError, 500),
        "anthropic": (lx.InternalServerError, 500),
        "gemini": (lx.APIConnectionError, 500),
    },
    "malformed": {
        "openai": (lx.InternalServerError, 500),
        "anthropic": (lx.APIConnectionError, 500),
        "gemini": (lx.BadRequestError, 422),
    },
}

CASES = [(fault, provider) for fault, by_provider in EXPECTED.items() for provider in by_provider]
IDS = [f"{provider}-{fault}" for fault, provider in CASES]


def _kwargs(emu: ProviderEmulator, provider: str, fault: str) -> dict:
    kwargs = emu.litellm_kwargs(provider, "m")  # type: ignore[arg-type]
    kwargs["timeout"] = SHORT_TIMEOUT if fault == "hang" else 10
    return kwargs


def _assert_mapped(exc: BaseException, fault: str, provider: str) -> None:
    cls, status = EXPECTED[fault][provider]
    assert type(exc) is cls, f"{type(exc).__name__}: {exc}"
    assert exc.status_code == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(("fault", "provider"), CASES, ids=IDS)
def test_sync_completion_maps_each_fault(provider_emulator: ProviderEmulator, fault: str, provider: str) -> None:
    """LiteLLM's class and status for the fault, and this package's StandardErrorCode for the result."""
    provider_emulator.script("m", FAULTS[fault])
    with pytest.raises(Exception) as caught:
        litellm.completion(messages=MESSAGES, **_kwargs(provider_emulator, provider, fault))
    _assert_mapped(caught.value, fault, provider)
    assert provider_emulator.count("m") == 1  # no hidden SDK retries
    if fault in CLASSIFIED:
        error = classify_error(caught.value)
        assert error.code is CLASSIFIED[fault], f"classify_error gave {error.code!r} for {caught.value!r}"
        if fault == "rate_limit":
            assert error.retry_after == 0.5


@pytest.mark.parametrize(("fault", "provider"), CASES, ids=IDS)
async def test_async_completion_maps_each_fault(provider_emulator: ProviderEmulator, fault: str, provider: str) -> None:
    provider_emulator.script("m", FAULTS[fault])
    with pytest.raises(Exception) as caught:
        await litellm.acompletion(messages=MESSAGES, **_kwargs(provider_emulator, provider, fault))
    _assert_mapped(caught.value, fault, provider)
    assert provider_emulator.count("m") == 1


def test_anthropic_529_keeps_the_provider_status(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.overloaded())
    with pytest.raises(lx.InternalServerError) as caught:
        litellm.completion(messages=MESSAGES, **provider_emulator.litellm_kwargs("anthropic", "m"))
    assert caught.value.provider_status_code == 529


def test_gemini_content_filter_is_a_finish_reason(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.content_filter())
    response = litellm.completion(messages=MESSAGES, **provider_emulator.litellm_kwargs("gemini", "m"))
    assert response.choices[0].finish_reason == "content_filter"
    assert not response.choices[0].message.content


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_retry_after_reaches_the_exception(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", [Fault.rate_limit(0.5), Fault.rate_limit(2)])
    kwargs = provider_emulator.litellm_kwargs(provider, "m")  # type: ignore[arg-type]
    with pytest.raises(lx.RateLimitError) as sync_caught:
        litellm.completion(messages=MESSAGES, **kwargs)
    with pytest.raises(lx.RateLimitError) as async_caught:
        await litellm.acompletion(messages=MESSAGES, **kwargs)
    assert sync_caught.value.litellm_response_headers["retry-after"] == "0.5"
    assert async_caught.value.litellm_response_headers["retry-after"] == "2"
    if provider == "openai":  # LiteLLM's Anthropic errors carry a synthetic response without the headers
        assert sync_caught.value.response.headers["retry-after"] == "0.5"
        assert sync_caught.value.litellm_response_headers["x-ratelimit-remaining-requests"] == "0"
    else:
        assert "anthropic-ratelimit-requests-reset" in sync_caught.value.litellm_response_headers


def test_gemini_retry_delay_reaches_the_classifier(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.rate_limit(5))
    with pytest.raises(lx.RateLimitError) as caught:
        litellm.completion(messages=MESSAGES, **provider_emulator.litellm_kwargs("gemini", "m"))
    assert classify_error(caught.value).retry_after == 5


def test_token_bucket_429_reaches_the_exception() -> None:
    with ProviderEmulator(clock=FakeClock().now) as emu:
        emu.rate_limit("m", rps=0.5, burst=1)
        kwargs = emu.litellm_kwargs("openai", "m")
        litellm.completion(messages=MESSAGES, **kwargs)
        with pytest.raises(lx.RateLimitError) as caught:
            litellm.completion(messages=MESSAGES, **kwargs)
    assert caught.value.litellm_response_headers["retry-after"] == "2"
    assert classify_error(caught.value).retry_after == 2


# --- success and streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_success_sync_async_and_streams(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.set_default("m", Success("It works fine", prompt_tokens=4))
    kwargs = provider_emulator.litellm_kwargs(provider, "m")  # type: ignore[arg-type]
    response = litellm.completion(messages=MESSAGES, **kwargs)
    assert response.choices[0].message.content == "It works fine"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 3)
    response = await litellm.acompletion(messages=MESSAGES, **kwargs)
    assert response.choices[0].message.content == "It works fine"
    chunks = [c.choices[0].delta.content or "" for c in litellm.completion(messages=MESSAGES, stream=True, **kwargs)]
    assert "".join(chunks) == "It works fine"
    stream = await litellm.acompletion(messages=MESSAGES, stream=True, **kwargs)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "It works fine"
    assert [(r.provider, r.stream) for r in provider_emulator.requests] == [
        (provider, False),
        (provider, False),
        (provider, True),
        (provider, True),
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", [Fault.stream_drop(2), Fault.stream_error(2)], ids=["drop", "error_event"])
async def test_mid_stream_failures(provider_emulator: ProviderEmulator, provider: str, fault: Fault) -> None:
    provider_emulator.script("m", [fault, fault])
    kwargs = provider_emulator.litellm_kwargs(provider, "m")  # type: ignore[arg-type]
    received: list[str] = []
    with pytest.raises(lx.MidStreamFallbackError) as caught:
        for chunk in litellm.completion(messages=MESSAGES, stream=True, **kwargs):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello from "
    assert caught.value.generated_content == "Hello from "
    assert not caught.value.is_pre_first_chunk
    expected = C.OVERLOADED if fault.kind == "stream_error" else C.SERVER_ERROR
    assert classify_error(caught.value).code is expected

    with pytest.raises(lx.MidStreamFallbackError):
        stream = await litellm.acompletion(messages=MESSAGES, stream=True, **kwargs)
        async for _ in stream:
            pass


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stream_rejected_before_first_chunk(provider_emulator: ProviderEmulator, provider: str) -> None:
    provider_emulator.script("m", Fault.rate_limit(0.5))
    with pytest.raises(lx.RateLimitError) as caught:
        list(litellm.completion(messages=MESSAGES, stream=True, **provider_emulator.litellm_kwargs(provider, "m")))
    assert caught.value.litellm_response_headers["retry-after"] == "0.5"


def test_gemini_stream_rejection_surfaces_on_first_read(provider_emulator: ProviderEmulator) -> None:
    """LiteLLM opens Gemini streams lazily, so even a 429 arrives as a pre-first-chunk MidStreamFallbackError."""
    provider_emulator.script("m", Fault.rate_limit(0.5))
    with pytest.raises(lx.MidStreamFallbackError) as caught:
        list(litellm.completion(messages=MESSAGES, stream=True, **provider_emulator.litellm_kwargs("gemini", "m")))
    assert caught.value.is_pre_first_chunk
    assert caught.value.status_code == 429
    assert classify_error(caught.value).code is C.RATE_LIMITED


def test_openai_malformed_stream_fails(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Fault.malformed())
    with pytest.raises(lx.MidStreamFallbackError):
        list(litellm.completion(messages=MESSAGES, stream=True, **provider_emulator.litellm_kwargs("openai", "m")))


# --- langchain-litellm ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_chat_litellm(provider_emulator: ProviderEmulator, provider: str) -> None:
    chat_models = pytest.importorskip("langchain_litellm")
    model = chat_models.ChatLiteLLM(
        model=f"{provider}/m",
        api_base=provider_emulator.api_base(provider),  # type: ignore[arg-type]
        api_key="test-key",
        max_retries=1,  # langchain-litellm's own tenacity: 1 attempt
        model_kwargs={"max_retries": 0, "num_retries": 0},
    )
    provider_emulator.script("m", [Success("one"), Success("two three"), Fault.rate_limit(0.5)])
    assert model.invoke("hi").content == "one"
    assert "".join(str(chunk.content) for chunk in model.stream("hi")) == "two three"
    with pytest.raises(lx.RateLimitError):
        await model.ainvoke("hi")
    reply = await model.ainvoke("hi")
    assert reply.content == "Hello from the provider emulator."
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] == 10
    assert provider_emulator.count("m") == 4
