"""Each entry point over LiteLLM tells the limiter when a granted request leaves (LiteLLM's pre-API-call hook)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from langchain_ailib_resilience import RateLimiterConfig, ResilientConfig, RetryConfig
from langchain_ailib_resilience.integrations.langchain import ResilientChatModel
from langchain_ailib_resilience.integrations.litellm import ResilienceCallback, resilient_acompletion
from langchain_ailib_resilience.policies.adaptive import AdaptiveRate
from langchain_ailib_resilience.policies.rate_limiter import RateLimiter
from langchain_ailib_resilience.registry import Registry
from langchain_ailib_resilience.testing.emulator import ProviderEmulator

CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=0), rate_limiter=RateLimiterConfig(requests_per_second=50, burst_size=1)
)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def departed(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Grant-to-departure delays the limiters hear, every target taken as a strict-spacing one from the start."""
    seen: list[float] = []
    original = RateLimiter.departed
    pacer_init = AdaptiveRate.__init__

    def strict_from_the_start(self: AdaptiveRate, *args: Any, **kwargs: Any) -> None:
        pacer_init(self, *args, **kwargs)
        self.strict = True

    monkeypatch.setattr(AdaptiveRate, "__init__", strict_from_the_start)

    def record(self: RateLimiter, granted_at: float) -> None:
        seen.append(self.clock.now() - granted_at)
        original(self, granted_at)

    monkeypatch.setattr(RateLimiter, "departed", record)
    return seen


@pytest.fixture
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


async def test_resilient_acompletion_reports_each_departure(departed: list[float], emulator: ProviderEmulator) -> None:
    registry = Registry()
    for _ in range(3):
        await resilient_acompletion(
            model="openai/dep-a",
            messages=MESSAGES,
            api_base=emulator.openai_base,
            api_key="sk-emulator",
            config=CONFIG,
            registry=registry,
        )
    assert len(departed) == 3 and all(0.0 <= delay < 1.0 for delay in departed)


async def test_resilient_acompletion_hears_departures_after_litellms_callbacks_were_reset(
    departed: list[float], emulator: ProviderEmulator
) -> None:
    litellm.logging_callback_manager._reset_all_callbacks()  # what the conftest (or a user) does between calls
    await resilient_acompletion(
        model="openai/dep-b",
        messages=MESSAGES,
        api_base=emulator.openai_base,
        api_key="sk-emulator",
        config=CONFIG,
        registry=Registry(),
    )
    assert len(departed) == 1


async def test_the_callback_reports_the_departure_of_what_it_gated(
    departed: list[float], emulator: ProviderEmulator
) -> None:
    ResilienceCallback(CONFIG, registry=Registry()).register()
    await litellm.acompletion(
        model="openai/dep-c", messages=MESSAGES, api_base=emulator.openai_base, api_key="sk-emulator", max_retries=0
    )
    assert len(departed) == 1


async def test_resilient_chat_model_over_chatlitellm_reports_the_departure(
    departed: list[float], emulator: ProviderEmulator
) -> None:
    model = ResilientChatModel(
        CONFIG,
        model="openai/dep-d",
        litellm_kwargs={"api_base": emulator.openai_base, "api_key": "sk-emulator"},
        registry=Registry(),
    )
    await model.ainvoke("hi")
    assert len(departed) == 1


async def test_departures_count_only_once_the_provider_showed_a_strict_spacing(
    monkeypatch: pytest.MonkeyPatch, emulator: ProviderEmulator
) -> None:
    """A tolerant provider's burst absorbs the ms between grant and send (counting them cost 1 % of goodput at
    burst 5): departures count once a few-ms-early 429 showed the provider spaces strictly."""
    seen: list[float] = []
    monkeypatch.setattr(RateLimiter, "departed", lambda self, granted_at: seen.append(granted_at))
    registry = Registry()

    async def call() -> None:
        await resilient_acompletion(
            model="openai/dep-e",
            messages=MESSAGES,
            api_base=emulator.openai_base,
            api_key="sk-emulator",
            config=CONFIG,
            registry=registry,
        )

    await call()
    assert seen == []  # nothing known about the provider's spacing yet
    state = registry.peek(registry.targets()[0])
    assert state is not None and state.pacer is not None
    state.pacer.rate_limited(2.0)  # a long Retry-After: over a limit, not early
    await call()
    assert seen == [] and not state.pacer.strict
    state.pacer.rate_limited(0.002)  # 2 ms early at a configured limit: the provider spaces strictly
    await call()
    assert state.pacer.strict and len(seen) == 1


async def test_resilient_chat_model_over_a_users_chatlitellm_reports_the_departure(
    departed: list[float], emulator: ProviderEmulator
) -> None:
    from langchain_litellm import ChatLiteLLM

    litellm.logging_callback_manager._reset_all_callbacks()  # nothing installed by an earlier test
    inner = ChatLiteLLM(model="openai/dep-f", api_base=emulator.openai_base, api_key="sk-emulator")
    model = ResilientChatModel(CONFIG, model=inner, registry=Registry())
    await model.ainvoke("hi")
    assert len(departed) == 1
