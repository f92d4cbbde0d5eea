"""A slow or silent Redis never stalls the event loop: async paths talk to it through ``redis.asyncio`` only.

Measured with a ticker task that asks to wake every 2 ms while async executor calls (a shared rate limit and a
shared breaker on ``state_url``) run: a sync Redis call on the loop shows as one tick late by its duration
(the 0.25 s socket timeout against a silent server). The bound is loose on purpose (a busy CI machine adds
lag of its own); the failure it guards against is 200+ ms.
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.bench_redis import RedisServer, SilentServer, lag_of_calls
from langchain_ailib_resilience import CircuitBreakerConfig, RateLimiterConfig, ResilientConfig
from langchain_ailib_resilience.executor import ResilientExecutor
from langchain_ailib_resilience.registry import Registry

pytestmark = pytest.mark.redis

MAX_LAG = 0.05


async def test_a_silent_redis_never_stalls_the_loop() -> None:
    silent = SilentServer()
    try:
        lag = await lag_of_calls(silent.url, calls=24)
    finally:
        silent.close()
    assert lag.lags, "the ticker never ran"
    assert lag.max_lag < MAX_LAG, f"event loop stalled {lag.max_lag * 1000:.0f} ms"


async def test_a_live_redis_never_stalls_the_loop(redis_server: RedisServer) -> None:
    lag = await lag_of_calls(redis_server.url, calls=24)
    assert lag.max_lag < MAX_LAG, f"event loop stalled {lag.max_lag * 1000:.0f} ms"


async def test_a_silent_redis_falls_back_to_local_limits_and_says_so() -> None:
    silent = SilentServer()
    config = ResilientConfig(
        state_url=silent.url,
        share_breaker_state=True,
        rate_limiter=RateLimiterConfig(requests_per_second=1000, burst_size=10),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5),
    )
    executor = ResilientExecutor(config, registry=Registry())

    async def ok() -> str:
        return "ok"

    try:
        results = await asyncio.gather(*(executor.execute(ok, target="silent/fallback") for _ in range(5)))
        assert results == ["ok"] * 5
        signals = executor.registry.signals("silent/fallback")
        assert signals is not None and signals.state_backend == "local-fallback"
    finally:
        silent.close()
