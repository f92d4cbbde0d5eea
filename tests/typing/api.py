"""The public API as users write it (the README's samples), type-checked by ``test_typing.py``.

Never run: it is checked with ``mypy --strict`` without the pydantic plugin, as a user without it would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    FakeClock,
    FallbackableError,
    FallbackChain,
    RateLimiter,
    RateLimiterConfig,
    Registry,
    ResilienceCallback,
    ResilienceError,
    ResilienceMiddleware,
    ResilientChatModel,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    SignalsSnapshot,
    resilient_acompletion,
    resilient_completion,
    signals_snapshot,
)

config = ResilientConfig(retry=RetryConfig(max_retries=3))
config = ResilientConfig(
    retry=RetryConfig(max_retries=2, initial_delay=0.1, max_delay=0.5),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=30),
    rate_limiter=RateLimiterConfig(requests_per_second=10),
)
interactive: ResilientConfig = ResilientConfig.interactive()
from_env: ResilientConfig = ResilientConfig.from_env()

# LangChain: the wrapper, positional config or config=.
model = ResilientChatModel(
    config,
    model=ChatOpenAI(model="gpt-4o"),
    fallbacks=[ChatOpenAI(model="gpt-4o-mini")],
)
model = ResilientChatModel(model="openai/gpt-4o", config=config)
content: str | list[str | dict[Any, Any]] = model.invoke("Say hello").content
targets: tuple[str, ...] | list[str] = model.targets
snapshot: SignalsSnapshot = model.signals_snapshot()
chain = model.with_fallbacks(
    [ResilientChatModel(model="openai/gpt-4o-mini")], exceptions_to_handle=(FallbackableError,)
)
limited = ChatOpenAI(model="gpt-4o", rate_limiter=RateLimiter(requests_per_second=10, burst_size=20))

# Agents.
agent = create_agent(
    ChatOpenAI(model="gpt-4o"),
    tools=[],
    middleware=[ResilienceMiddleware(config, fallbacks=[ChatOpenAI(model="gpt-4o-mini")])],
)
middleware = ResilienceMiddleware(fallbacks=["anthropic/claude-sonnet-4-5"], registry=Registry(), clock=FakeClock())

# Fallback across targets.
runnable = FallbackChain(["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]).as_runnable()
runnable = FallbackChain(["openai/gpt-4o"], config=config).as_runnable(config=config)


# The executor.
async def ping() -> str:
    return "pong"


async def use_executor() -> None:
    executor = ResilientExecutor(config, registry=Registry(), clock=FakeClock())
    answer: str = await executor.execute(ping, target="openai/gpt-4o")
    print(answer)


# LiteLLM.
async def use_litellm() -> None:
    messages = [{"role": "user", "content": "hi"}]
    callback = ResilienceCallback(config).register()
    print(callback.signals_snapshot(model="openai/gpt-4o").circuit_state)
    callback.unregister()
    response = await resilient_acompletion(
        model="openai/gpt-4o",
        messages=messages,
        fallbacks=["anthropic/claude-sonnet-4-5", {"model": "openai/gpt-4o-mini", "timeout": 20}],
        config=config,
    )
    print(response)
    print(resilient_completion(model="openai/gpt-4o", messages=messages, config=config))


try:
    asyncio.run(use_litellm())
except ResilienceError as error:
    print(error.code)
print(signals_snapshot("openai/gpt-4o").circuit_state)
