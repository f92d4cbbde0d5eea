"""Partner chat models as targets: ChatOpenAI, AzureChatOpenAI, ChatAnthropic and init_chat_model, over HTTP.

Every case runs the real partner class against the provider emulator and counts what reached it: one request
per attempt of ours, whatever the partner's ``max_retries`` default (None in langchain-openai, which leaves the
SDK's 2 retries on; 2 in ChatAnthropic), the user's instance untouched, and target names from the endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from langchain.chat_models import init_chat_model
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_openai import AzureChatOpenAI, ChatOpenAI

from langchain_ailib_resilience import FakeClock, ResilientChatModel, ResilientConfig, RetryConfig, StandardErrorCode
from langchain_ailib_resilience.testing import Fault, ProviderEmulator

CONFIG = ResilientConfig(retry=RetryConfig(max_retries=2, initial_delay=0.01, max_delay=0.02))
PRIMARY, BACKUP = "gpt-primary", "claude-backup"

Factory = Callable[[ProviderEmulator], BaseChatModel]

PARTNERS: dict[str, Factory] = {
    "ChatOpenAI(default max_retries=None)": lambda emu: ChatOpenAI(
        model=PRIMARY, base_url=emu.openai_base, api_key="test-key"
    ),
    "ChatOpenAI(max_retries=5)": lambda emu: ChatOpenAI(
        model=PRIMARY, base_url=emu.openai_base, api_key="test-key", max_retries=5
    ),
    "AzureChatOpenAI": lambda emu: AzureChatOpenAI(
        azure_deployment=PRIMARY, azure_endpoint=emu.base_url, api_key="test-key", api_version="2024-10-21"
    ),
    "ChatAnthropic(default max_retries=2)": lambda emu: ChatAnthropic(
        model=PRIMARY, base_url=emu.base_url, api_key="test-key"
    ),
    "init_chat_model('openai:...')": lambda emu: init_chat_model(
        f"openai:{PRIMARY}", base_url=emu.openai_base, api_key="test-key"
    ),
}


def backup(emu: ProviderEmulator) -> ChatAnthropic:
    return ChatAnthropic(model=BACKUP, base_url=emu.base_url, api_key="test-key")


def wrapped(primary: Any, emu: ProviderEmulator) -> ResilientChatModel:
    return ResilientChatModel(CONFIG, model=primary, fallbacks=[backup(emu)], clock=FakeClock())


@pytest.mark.parametrize("make", PARTNERS.values(), ids=PARTNERS.keys())
@pytest.mark.parametrize("shape", ["invoke", "ainvoke", "stream", "astream"])
def test_a_429_storm_costs_one_request_per_attempt(
    provider_emulator: ProviderEmulator, make: Factory, shape: str
) -> None:
    emu = provider_emulator
    emu.set_default(PRIMARY, Fault.rate_limit(0.01))
    model = wrapped(make(emu), emu)
    if shape == "invoke":
        text = model.invoke("hi").text
    elif shape == "ainvoke":
        text = asyncio.run(model.ainvoke("hi")).text
    elif shape == "stream":
        text = "".join(chunk.text for chunk in model.stream("hi"))
    else:

        async def collect() -> str:
            return "".join([chunk.text async for chunk in model.astream("hi")])

        text = asyncio.run(collect())
    assert text == "Hello from the provider emulator."
    assert emu.count(PRIMARY) == 3  # our 1 + 2 retries, none of the SDK's
    assert emu.count(BACKUP) == 1


@pytest.mark.parametrize("make", PARTNERS.values(), ids=PARTNERS.keys())
def test_a_spent_quota_reaches_the_primary_once(provider_emulator: ProviderEmulator, make: Factory) -> None:
    emu = provider_emulator
    emu.set_default(PRIMARY, Fault.quota())
    wrapped(make(emu), emu).invoke("hi")
    assert emu.count(PRIMARY) == 1
    assert emu.count(BACKUP) == 1


def test_the_users_instance_is_not_changed(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    openai_model = ChatOpenAI(model=PRIMARY, base_url=emu.openai_base, api_key="test-key")
    anthropic_model = ChatAnthropic(model=BACKUP, base_url=emu.base_url, api_key="test-key")
    anthropic_model._async_client  # noqa: B018 - built before wrapping: the copy must not inherit it
    model = ResilientChatModel(CONFIG, model=openai_model, fallbacks=[anthropic_model], clock=FakeClock())
    emu.set_default(PRIMARY, Fault.rate_limit(0.01))
    model.invoke("hi")
    assert openai_model.max_retries is None
    assert openai_model.root_client.max_retries == 2
    assert openai_model.root_async_client.max_retries == 2
    assert anthropic_model.max_retries == 2
    assert anthropic_model._client.max_retries == 2
    assert anthropic_model._async_client.max_retries == 2


def test_the_users_http_client_base_url_and_headers_are_kept(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    seen: list[httpx2.Request] = []
    http_client = httpx2.Client(event_hooks={"request": [seen.append]})
    user = ChatOpenAI(
        model=PRIMARY,
        base_url=emu.openai_base,
        api_key="test-key",
        http_client=http_client,
        default_headers={"x-team": "search"},
    )
    emu.set_default(PRIMARY, Fault.rate_limit(0.01))
    model = ResilientChatModel(CONFIG, model=user, clock=FakeClock())
    with pytest.raises(Exception, match="E2001"):
        model.invoke("hi")
    assert emu.count(PRIMARY) == 3
    assert len(seen) == 3  # every request went through the user's own client
    assert {request.headers["x-team"] for request in seen} == {"search"}
    assert {str(request.url) for request in seen} == {f"{emu.openai_base}/chat/completions"}


def test_targets_are_named_by_provider_model_and_base_url() -> None:
    with ProviderEmulator() as one, ProviderEmulator() as two:
        a = ChatOpenAI(model="gpt-4o", base_url=one.openai_base, api_key="k")
        b = ChatOpenAI(model="gpt-4o", base_url=two.openai_base, api_key="k")
        same_as_a = ChatOpenAI(model="gpt-4o", base_url=one.openai_base + "/", api_key="k")
        model = ResilientChatModel(CONFIG, model=a, fallbacks=[b])
        assert model.targets == [f"openai/gpt-4o@{one.openai_base}", f"openai/gpt-4o@{two.openai_base}"]
        other = ResilientChatModel(CONFIG, model=same_as_a)
        assert other.targets == model.targets[:1]
        # One endpoint, one breaker: a failure recorded through one wrapper shows in the other.
        assert other.executor.state(other.targets[0]) is model.executor.state(model.targets[0])
    public = ResilientChatModel(CONFIG, model=ChatOpenAI(model="gpt-4o", api_key="k"))
    assert public.targets == ["openai/gpt-4o"]  # the provider's own endpoint needs no @base_url
    claude = ResilientChatModel(CONFIG, model=ChatAnthropic(model="claude-3-5-sonnet-latest", api_key="k"))
    assert claude.targets == ["anthropic/claude-3-5-sonnet-latest"]
    azure = AzureChatOpenAI(
        azure_deployment="dep", azure_endpoint="https://acme.openai.azure.com", api_key="k", api_version="2024-10-21"
    )
    assert ResilientChatModel(CONFIG, model=azure).targets == ["azure/dep@https://acme.openai.azure.com"]


def test_langchain_provider_model_strings_go_through_init_chat_model(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.set_default(PRIMARY, Fault.rate_limit(0.01))
    model = ResilientChatModel(
        CONFIG,
        model={"model": f"openai:{PRIMARY}", "base_url": emu.openai_base, "api_key": "test-key"},
        fallbacks=[{"model": f"anthropic:{BACKUP}", "base_url": emu.base_url, "api_key": "test-key"}],
        clock=FakeClock(),
    )
    assert model.targets == [f"openai/{PRIMARY}@{emu.openai_base}", f"anthropic/{BACKUP}@{emu.base_url}"]
    assert model.invoke("hi").text == "Hello from the provider emulator."
    assert (emu.count(PRIMARY), emu.count(BACKUP)) == (3, 1)


@pytest.mark.parametrize("make", PARTNERS.values(), ids=PARTNERS.keys())
def test_a_fresh_event_loop_per_call_works(provider_emulator: ProviderEmulator, make: Factory) -> None:
    emu = provider_emulator
    model = ResilientChatModel(CONFIG, model=make(emu))
    for _ in range(3):  # a notebook or script: one asyncio.run per call, each loop closed afterwards
        assert asyncio.run(model.ainvoke("hi")).text == "Hello from the provider emulator."

    async def streamed() -> str:
        return "".join([chunk.text async for chunk in model.astream("hi")])

    for _ in range(2):
        assert asyncio.run(streamed()) == "Hello from the provider emulator."
    assert emu.count(PRIMARY) == 5


def test_a_typo_in_a_per_target_mapping_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"unknown key 'api_bsae'.*did you mean 'api_base'"):
        ResilientChatModel(CONFIG, model={"model": "openai/gpt-4o", "api_bsae": "http://127.0.0.1:8000/v1"})
    with pytest.raises(ValueError, match=r"fallbacks\[0\]: unknown key 'temprature'.*'temperature'"):
        ResilientChatModel(CONFIG, model="openai/gpt-4o", fallbacks=[{"model": "openai/x", "temprature": 0}])
    # The same for LangChain's "provider:model" form (init_chat_model would move the key into model_kwargs).
    with pytest.raises(ValueError, match=r"unknown key 'api_bsae' for ChatOpenAI"):
        ResilientChatModel(
            CONFIG, model={"model": "openai:gpt-4o", "api_bsae": "http://127.0.0.1:8000/v1", "api_key": "k"}
        )
    with pytest.raises(ValueError, match=r"fallbacks\[0\]: unknown key 'base_ulr' for ChatAnthropic"):
        ResilientChatModel(
            CONFIG, model="openai/gpt-4o", fallbacks=[{"model": "anthropic:claude-x", "base_ulr": "u", "api_key": "k"}]
        )
    with pytest.raises(ValueError, match=r"litellm_kwargs: unknown key 'api_kye'"):
        ResilientChatModel(CONFIG, model="openai/gpt-4o", litellm_kwargs={"api_kye": "k"})


def test_litellm_parameters_chat_litellm_has_no_field_for_reach_the_call(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    model = ResilientChatModel(
        CONFIG,
        model={"model": f"openai/{PRIMARY}", "api_base": emu.openai_base, "api_key": "k", "seed": 7},
    )
    model.invoke("hi")
    assert emu.requests[-1].body.get("seed") == 7


HANG_CONFIG = ResilientConfig(retry=RetryConfig(max_retries=0), attempt_timeout=0.2, total_timeout=10.0)


def _first_failure(model: ResilientChatModel) -> list[Any]:
    events: list[Any] = []
    model.executor.add_listener(events.append)
    return events


@pytest.mark.parametrize("make", PARTNERS.values(), ids=PARTNERS.keys())
@pytest.mark.parametrize("shape", ["invoke", "stream", "with_structured_output"])
def test_a_sync_attempt_is_cut_by_the_attempt_timeout(
    provider_emulator: ProviderEmulator, make: Factory, shape: str
) -> None:
    # Was: a running sync call cannot be interrupted and the partner's SDK got no timeout, so a hung request
    # held the attempt until the server let go (here 1 s, then a dropped connection; in life the SDK's 600 s).
    emu = provider_emulator
    emu.set_default(PRIMARY, Fault.hang(1.0))
    model = ResilientChatModel(HANG_CONFIG, model=make(emu), fallbacks=[backup(emu)], clock=FakeClock())
    events = _first_failure(model)
    if shape == "invoke":
        assert model.invoke("hi").text == "Hello from the provider emulator."
    elif shape == "stream":
        assert "".join(chunk.text for chunk in model.stream("hi")) == "Hello from the provider emulator."
    else:
        schema = {"title": "Answer", "type": "object", "properties": {"city": {"type": "string"}}}
        assert model.with_structured_output(schema).invoke("hi") == {"city": "example"}
    assert [e.code for e in events if e.kind == "fallback"] == [StandardErrorCode.TIMEOUT]
    assert (emu.count(PRIMARY), emu.count(BACKUP)) == (1, 1)


def test_the_partners_own_shorter_timeout_is_kept(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    emu.set_default(PRIMARY, Fault.hang(1.0))
    config = ResilientConfig(retry=RetryConfig(max_retries=0), attempt_timeout=5.0)
    user = ChatOpenAI(model=PRIMARY, base_url=emu.openai_base, api_key="test-key", timeout=0.2)
    model = ResilientChatModel(config, model=user, fallbacks=[backup(emu)], clock=FakeClock())
    events = _first_failure(model)
    assert model.invoke("hi").text == "Hello from the provider emulator."
    assert [e.code for e in events if e.kind == "fallback"] == [StandardErrorCode.TIMEOUT]
