"""share_breaker_state: an opening on one worker opens the target on all, and the store never blocks calls."""

from __future__ import annotations

import logging
import socket
import time
import uuid

import pytest

from benchmarks.bench_redis import RedisServer
from langchain_ailib_resilience import CircuitBreaker, CircuitOpenError, CircuitState, FakeClock, ResilientConfig
from langchain_ailib_resilience.state import (
    MemoryStateStore,
    SharedCircuitBreaker,
    StateStoreUnavailableError,
    breaker_key,
    build_breaker,
    redis_store,
)


class DownStore:
    name = "down"

    def __init__(self) -> None:
        self.calls = 0

    def raise_flag(self, key: str, seconds: float) -> None:
        self.calls += 1
        raise StateStoreUnavailableError("connection refused")

    def flag_remaining(self, key: str) -> float:
        self.calls += 1
        raise StateStoreUnavailableError("connection refused")


def open_it(breaker: CircuitBreaker) -> None:
    while breaker.state is CircuitState.CLOSED:
        breaker.record_failure(breaker.admit())


def test_opening_on_one_worker_opens_the_others_for_its_cooldown(clock: FakeClock) -> None:
    store = MemoryStateStore(clock)
    a = SharedCircuitBreaker(store, "cb", failure_threshold=2, cooldown_seconds=10, clock=clock, name="t")
    b = SharedCircuitBreaker(store, "cb", failure_threshold=2, cooldown_seconds=10, clock=clock, name="t")
    b.admit()  # reads "not open", reused for refresh=0.5 s
    open_it(a)
    clock.advance(0.5)
    with pytest.raises(CircuitOpenError, match="another worker") as info:
        b.admit()
    assert info.value.retry_after == pytest.approx(9.5)
    assert b.state is CircuitState.OPEN and b.cooldown_remaining == pytest.approx(9.5)
    assert b.rejected_total == 1 and b.failure_count == 0  # b's own counts are untouched
    clock.advance(9.5)
    assert a.state is CircuitState.HALF_OPEN  # the opener probes...
    b.admit()  # ...the others resume when the flag expires
    assert b.state is CircuitState.CLOSED


def test_a_store_that_does_not_answer_never_blocks_admission(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = DownStore()
    breaker = SharedCircuitBreaker(store, "cb", clock=clock, store_backoff=5.0)
    with caplog.at_level(logging.WARNING, logger="langchain_ailib_resilience.state"):
        for _ in range(20):
            breaker.record_success(breaker.admit())
            clock.advance(0.1)
    assert store.calls == 1  # then it waits out the 5 s back-off
    assert len(caplog.records) == 1
    open_it(breaker)  # publishing fails quietly too
    assert breaker.state is CircuitState.OPEN


def test_build_breaker_shares_only_when_asked(clock: FakeClock) -> None:
    plain = build_breaker("t", ResilientConfig(state_url="memory://"), clock)
    assert type(plain) is CircuitBreaker
    shared = build_breaker("t", ResilientConfig(state_url="memory://", share_breaker_state=True), clock)
    assert isinstance(shared, SharedCircuitBreaker) and shared.key == breaker_key("t") == "ailib:cb:{t}"


@pytest.mark.redis
def test_breakers_share_openings_through_redis(redis_server: RedisServer) -> None:
    target = f"t-{uuid.uuid4().hex[:8]}"
    config = ResilientConfig(state_url=redis_server.url, share_breaker_state=True)
    worker_a = build_breaker(target, config, FakeClock())
    store = redis_store(redis_server.url)
    worker_b = SharedCircuitBreaker(store, breaker_key(target), refresh=0.0, cooldown_seconds=30)
    worker_b.admit()
    open_it(worker_a)
    assert 29.0 < store.flag_remaining(breaker_key(target)) <= 30.0
    with pytest.raises(CircuitOpenError):
        worker_b.admit()
    assert worker_b.state is CircuitState.OPEN


def test_unreachable_redis_does_not_hang_admission() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        breaker = build_breaker("silent", ResilientConfig(state_url=url, share_breaker_state=True), FakeClock())
        started = time.monotonic()
        for _ in range(10):
            breaker.record_success(breaker.admit())
        assert time.monotonic() - started < 1.0  # one 0.25 s timeout, then the back-off
