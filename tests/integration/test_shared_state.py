"""One target, one state: ResilientChatModel, ResilienceCallback and resilient_acompletion share a breaker."""

from __future__ import annotations

import litellm
import pytest

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    ResilienceCallback,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
    resilient_acompletion,
    signals_snapshot,
)
from langchain_ailib_resilience.testing import Fault, ProviderEmulator

CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=0), circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=60)
)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _no_callbacks() -> None:
    litellm.logging_callback_manager._reset_all_callbacks()
    yield
    litellm.logging_callback_manager._reset_all_callbacks()


def test_model_id_targets_are_named_alike_across_integrations(provider_emulator: ProviderEmulator) -> None:
    base = provider_emulator.api_base("openai")
    model = ResilientChatModel(CONFIG, model={"model": "openai/shared", "api_base": base, "api_key": "test-key"})
    assert model.targets == [f"openai/shared@{base}"]
    assert ResilientChatModel(CONFIG, model="gpt-4o").targets == ["openai/gpt-4o"]


async def test_an_outage_seen_through_one_integration_opens_the_circuit_for_all(
    provider_emulator: ProviderEmulator,
) -> None:
    base = provider_emulator.api_base("openai")
    provider_emulator.set_default("shared", Fault.overloaded())
    model = ResilientChatModel(CONFIG, model={"model": "openai/shared", "api_base": base, "api_key": "test-key"})
    for _ in range(2):
        with pytest.raises(Exception):
            await model.ainvoke("hi")
    target = f"openai/shared@{base}"
    assert signals_snapshot(target).circuit_state == "open"
    sent = provider_emulator.count("shared")

    with pytest.raises(CircuitOpenError):
        await resilient_acompletion(
            model="openai/shared", api_base=base, api_key="test-key", messages=MESSAGES, config=CONFIG
        )
    callback = ResilienceCallback(CONFIG)
    litellm.callbacks.append(callback)
    with pytest.raises(CircuitOpenError):
        await litellm.acompletion(
            model="openai/shared", api_base=base, api_key="test-key", messages=MESSAGES, max_retries=0
        )
    assert provider_emulator.count("shared") == sent  # nothing reached the provider once it was open
