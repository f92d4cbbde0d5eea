"""A real, throwaway redis-server for the shared-state tests; they skip with a reason when it is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.bench_redis import REDIS_SERVER, RedisServer

MISSING = (
    "redis-server binary not found on PATH: shared-state tests need it "
    "(Debian/Ubuntu: apt-get install redis-server; .ci/run installs it)"
)


def _server() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the whole session (tests use distinct keys)."""
    yield from _server()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server this test alone may stop and restart."""
    yield from _server()
