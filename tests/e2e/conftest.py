"""End-to-end set-up: LiteLLM's callback lists reset around each test, and the HTTP stack warmed up once.

Why the warm-up: the first LiteLLM call of a process for each provider format imports and builds its
transformation and client modules, which takes longer than the matrix's 0.4 s attempt timeout. Without it, a
hang case that happens to run first would see its *retry* time out too, for reasons that have nothing to do
with the product.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import litellm
import pytest

from langchain_ailib_resilience import ResilientChatModel, ResilientConfig, reset_registry
from langchain_ailib_resilience.testing import ProviderEmulator

PROVIDERS = ("openai", "anthropic", "gemini")
_MESSAGES = [{"role": "user", "content": "warm up"}]


@pytest.fixture(autouse=True)
def _no_leaked_callbacks() -> Iterator[None]:
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.num_retries = None
    yield
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.num_retries = None


async def _warm_async(emulator: ProviderEmulator, provider: str) -> None:
    kwargs = emulator.litellm_kwargs(provider, "warm-up")  # type: ignore[arg-type]
    await litellm.acompletion(messages=_MESSAGES, **kwargs)
    stream = await litellm.acompletion(messages=_MESSAGES, stream=True, **kwargs)
    async for _ in stream:
        pass
    model = ResilientChatModel(
        ResilientConfig(),
        model={"model": f"{provider}/warm-up", "api_base": emulator.api_base(provider), "api_key": "test-key"},  # type: ignore[arg-type]
    )
    await model.ainvoke("warm up")
    async for _ in model.astream("warm up"):
        pass


@pytest.fixture(scope="session")
def warm_litellm() -> None:
    """One sync, async and streaming call per provider format through LiteLLM and ``ChatLiteLLM``."""
    with ProviderEmulator() as emulator:
        for provider in PROVIDERS:
            kwargs = emulator.litellm_kwargs(provider, "warm-up")  # type: ignore[arg-type]
            litellm.completion(messages=_MESSAGES, **kwargs)
            for _ in litellm.completion(messages=_MESSAGES, stream=True, **kwargs):
                pass
            asyncio.run(_warm_async(emulator, provider))
    reset_registry()
