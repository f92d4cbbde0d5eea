"""The shared limiter on a real redis-server: atomic, weighted, multi-process, and never hostage to Redis."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from benchmarks.bench_redis import RESOLUTION, RedisServer, free_port, run_shared_limit, worst_excess
from langchain_ailib_resilience import RateLimiterConfig, Registry, ResilientConfig, SystemClock
from langchain_ailib_resilience.state import SharedRateLimiter, bucket_key, redis_store

pytestmark = pytest.mark.redis


class RecordingClock(SystemClock):
    """Real time, remembering every sleep asked for: shows waiters sleep once, exactly, never poll."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().asleep(seconds)


def fresh_key() -> str:
    return bucket_key(f"test-{uuid.uuid4().hex}")


def config(url: str, rps: float, burst: int) -> ResilientConfig:
    return ResilientConfig(
        state_url=url, rate_limiter=RateLimiterConfig(requests_per_second=rps, burst_size=burst, max_wait=None)
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: the worst kind of unreachable."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


def test_registry_builds_the_redis_limiter_from_state_url(redis_server: RedisServer) -> None:
    target = f"openai/gpt-4o-{uuid.uuid4().hex[:8]}"
    state = Registry().get(target, config(redis_server.url, 0.5, 3))
    limiter = state.limiter
    assert isinstance(limiter, SharedRateLimiter)
    assert limiter.key == f"ailib:rl:{{{target}}}"
    assert state.state_backend == "redis" and limiter.backend == "redis"
    limiter.acquire_or_raise(tokens=2)
    raw = redis.Redis.from_url(redis_server.url).hgetall(limiter.key)
    assert float(raw[b"level"]) == pytest.approx(1.0, abs=0.05)
    assert state.signals().state_backend == "redis"
    assert state.signals().rate_remaining == pytest.approx(1.0, abs=0.05)


def test_state_url_from_the_environment(redis_server: RedisServer) -> None:
    cfg = ResilientConfig.from_env({"AI_LIB_STATE_URL": redis_server.url, "AI_LIB_RPS": "5"})
    limiter = Registry().get("env-target", cfg).limiter
    assert isinstance(limiter, SharedRateLimiter)
    assert limiter.store is redis_store(redis_server.url)


def test_weighted_acquire_sleeps_once_for_exactly_the_deficit(redis_server: RedisServer) -> None:
    clock = RecordingClock()
    key = fresh_key()
    store = redis_store(redis_server.url)
    limiter = SharedRateLimiter(store, key, 20, 10, clock=clock)
    other = SharedRateLimiter(store, key, 20, 10, clock=clock)  # another process, in effect
    limiter.acquire_or_raise(tokens=7)
    assert 3.0 <= other.remaining < 3.5  # the other process sees the same bucket (plus a little refill)
    other.acquire_or_raise(tokens=5)  # ~3 there, ~2 more at 20/s: one sleep of at most 0.1 s
    assert len(clock.sleeps) == 1
    assert 0.0 < clock.sleeps[0] <= 0.1
    assert not limiter.try_acquire(tokens=5)
    with pytest.raises(ValueError, match="exceeds burst_size"):
        limiter.acquire_or_raise(tokens=11)


def test_the_script_reserves_and_gives_back_as_apply_bucket_does(redis_server: RedisServer) -> None:
    store, key = redis_store(redis_server.url), fresh_key()
    assert store.take(key, 1, 1, 1).wait == 0.0  # full: taken at once
    first = store.take(key, 1, 1, 1, reserve=10)  # empty: reserved, due in ~1 s
    second = store.take(key, 1, 1, 1, reserve=10)  # due in ~2 s
    assert first.wait == pytest.approx(-1.0, abs=0.05) and second.wait == pytest.approx(-2.0, abs=0.05)
    assert second.level == pytest.approx(-2.0, abs=0.05)
    refused = store.take(key, 1, 1, 1, reserve=1.0)  # would be due in ~3 s: nothing taken
    assert refused.wait == pytest.approx(3.0, abs=0.05) and refused.level == pytest.approx(-2.0, abs=0.05)
    kept = store.take(key, -1, 1, 1, due=first.time - first.wait)  # not the latest: its slot stays spent
    assert kept.level == pytest.approx(-2.0, abs=0.05)
    back = store.take(key, -1, 1, 1, due=second.time - second.wait)  # the latest: given back
    assert back.level == pytest.approx(-1.0, abs=0.05)


async def test_cancelled_async_waiter_consumes_nothing_in_redis(redis_server: RedisServer) -> None:
    store = redis_store(redis_server.url)
    key = fresh_key()
    limiter = SharedRateLimiter(store, key, 2, 2)
    await limiter.aacquire_or_raise(tokens=2)
    drained_at = limiter.last_grant_time
    assert drained_at is not None
    waiter = asyncio.create_task(limiter.aacquire_or_raise(tokens=2))  # needs ~1 s
    await asyncio.sleep(0.1)
    assert limiter.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    peek = await store.atake(key, 0, 2, 2)
    assert peek.level == pytest.approx(2 * (peek.time - drained_at), abs=1e-3)  # refill only, nothing taken
    assert limiter.waiting == 0 and limiter.granted_total == 1
    await store.aclose()


def test_four_processes_share_thirty_per_second(redis_server: RedisServer) -> None:
    result = run_shared_limit(redis_server.url, processes=4, rate=30.0, burst=5, seconds=5.0)
    assert result.fallbacks == 0
    assert all(count > 0 for count in result.per_process), result.per_process
    # The invariant, on Redis server time: over any window W, grants <= rate * W + burst. Reserved grants sit
    # exactly on the bound, in whole microseconds as epoch-second floats: allow the script's resolution.
    assert result.worst_excess() <= RESOLUTION * result.rate
    assert 28.5 <= result.steady_rate <= 31.5, result.steady_rate


async def test_redis_stopped_mid_run_continues_on_local_limits_and_recovers(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    rate, burst = 20.0, 5
    state = Registry().get(f"stop-{uuid.uuid4().hex[:8]}", config(own_redis_server.url, rate, burst))
    limiter = state.limiter
    assert isinstance(limiter, SharedRateLimiter)
    grants: list[tuple[float, str]] = []

    async def client(calls: int) -> None:
        for _ in range(calls):
            await limiter.aacquire_or_raise(timeout=None)
            grants.append((time.monotonic(), limiter.backend))

    with caplog.at_level(logging.INFO, logger="langchain_ailib_resilience.state"):
        run = asyncio.gather(*(client(8) for _ in range(6)))
        await asyncio.sleep(0.6)
        own_redis_server.stop()
        stopped_at = time.monotonic()
        await asyncio.wait_for(run, 10)
        assert len(grants) == 48  # none lost, none failed
        assert {backend for _, backend in grants} == {"redis", "local-fallback"}
        assert state.signals().state_backend == "local-fallback"
        local = [t for t, backend in grants if backend == "local-fallback" and t > stopped_at]
        assert worst_excess(local, rate, burst) <= 0.05  # still limited: same rate and burst, locally
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1

        own_redis_server.start()  # same port, empty: the script must be loaded again
        deadline = time.monotonic() + 6
        while limiter.backend != "redis" and time.monotonic() < deadline:
            assert limiter.remaining >= 0  # reading signals asks Redis once the back-off is over
            await asyncio.sleep(0.1)
        assert state.signals().state_backend == "redis"
        await limiter.aacquire_or_raise()
        assert limiter.backend == "redis"
    assert "answers again" in caplog.records[-1].getMessage()


def test_unreachable_url_at_start_never_hangs() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: connection refused
    started = time.monotonic()
    state = Registry().get("refused", config(url, 50, 5))
    assert time.monotonic() - started < 0.5
    assert state.limiter is not None
    for _ in range(10):
        state.limiter.acquire_or_raise(timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert state.signals().state_backend == "local-fallback"


def test_silent_server_costs_one_socket_timeout_then_local(silent_port: int) -> None:
    state = Registry().get("silent", config(f"redis://127.0.0.1:{silent_port}/0", 50, 5))
    assert state.limiter is not None
    started = time.monotonic()
    state.limiter.acquire_or_raise()
    first = time.monotonic() - started
    for _ in range(4):
        state.limiter.acquire_or_raise()
    assert 0.2 <= first < 1.0  # bounded by the 0.25 s socket timeout
    assert time.monotonic() - started < first + 0.2  # then local, no more timeouts during the back-off
    assert state.signals().state_backend == "local-fallback"


async def test_silent_server_async_never_hangs(silent_port: int) -> None:
    state = Registry().get("silent-async", config(f"redis://127.0.0.1:{silent_port}/0", 50, 5))
    assert state.limiter is not None
    started = time.monotonic()
    await asyncio.gather(*(state.limiter.aacquire_or_raise() for _ in range(5)))
    assert time.monotonic() - started < 1.0
    assert state.signals().state_backend == "local-fallback"
