"""On an event loop's thread the library only awaits a state store, never calls it (no server needed).

A store double fails the test whenever one of its blocking methods runs while this thread has a running event
loop: async executor calls with a shared limit and breaker (grants, failures that open the circuit and publish
it, cancellations that refund, signals read on the loop) must use only ``atake``/``araise_flag``/``aflag_remaining``.
"""

from __future__ import annotations

import asyncio

import pytest

import langchain_ailib_resilience.state as state_module
from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    RateLimiterConfig,
    ResilientConfig,
    RetryConfig,
)
from langchain_ailib_resilience.executor import ResilientExecutor
from langchain_ailib_resilience.registry import Registry
from langchain_ailib_resilience.state import BucketReply, MemoryStateStore


def loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LoopGuardStore(MemoryStateStore):
    name = "guarded"

    def __init__(self) -> None:
        super().__init__()
        self.blocking_on_loop: list[str] = []
        self.async_calls = 0

    def _guard(self, what: str) -> None:
        if loop_running():
            self.blocking_on_loop.append(what)

    def take(self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float) -> BucketReply:
        self._guard("take")
        return super().take(key, tokens, rate, burst, *rest, **more)

    def raise_flag(self, key: str, seconds: float) -> None:
        self._guard("raise_flag")
        super().raise_flag(key, seconds)

    def flag_remaining(self, key: str) -> float:
        self._guard("flag_remaining")
        return super().flag_remaining(key)

    async def atake(
        self, key: str, tokens: float, rate: float, burst: float, *rest: float, **more: float
    ) -> BucketReply:
        self.async_calls += 1
        return MemoryStateStore.take(self, key, tokens, rate, burst, *rest, **more)

    async def araise_flag(self, key: str, seconds: float) -> None:
        self.async_calls += 1
        MemoryStateStore.raise_flag(self, key, seconds)

    async def aflag_remaining(self, key: str) -> float:
        self.async_calls += 1
        return MemoryStateStore.flag_remaining(self, key)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> LoopGuardStore:
    guard = LoopGuardStore()
    monkeypatch.setattr(state_module, "_store_for", lambda url, clock: guard)
    return guard


def config() -> ResilientConfig:
    return ResilientConfig(
        state_url="redis://127.0.0.1:1/0",  # never dialled: the store is the double above
        share_breaker_state=True,
        retry=RetryConfig(max_retries=0),
        rate_limiter=RateLimiterConfig(requests_per_second=1000, burst_size=20),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
    )


async def test_async_calls_never_call_the_store_synchronously(store: LoopGuardStore) -> None:
    executor = ResilientExecutor(config(), registry=Registry())

    async def ok() -> str:
        return "ok"

    async def broken() -> str:
        raise ConnectionError("reset")

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    assert await executor.execute(ok, target="t/a") == "ok"
    for _ in range(2):
        with pytest.raises(Exception, match="reset"):
            await executor.execute(broken, target="t/a")
    with pytest.raises(CircuitOpenError):
        await executor.execute(ok, target="t/a")
    task = asyncio.create_task(executor.execute(slow, target="t/b"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    signals = executor.registry.signals("t/a")
    assert signals is not None and signals.circuit_state == "open"
    await asyncio.sleep(0.01)  # background publishes and refunds finish
    assert store.blocking_on_loop == []
    assert store.async_calls > 0
    assert store.flag_remaining("ailib:cb:{t/a}") > 0  # the opening was published, through the async client


async def test_a_remote_opening_is_honoured_on_the_first_async_call(store: LoopGuardStore) -> None:
    MemoryStateStore.raise_flag(store, "ailib:cb:{t/remote}", 30)  # another worker opened it
    executor = ResilientExecutor(config(), registry=Registry())

    async def ok() -> str:
        return "ok"

    with pytest.raises(CircuitOpenError, match="another worker"):
        await executor.execute(ok, target="t/remote")
    assert store.blocking_on_loop == []
