"""A real, throwaway redis-server for the shared-state tests.

Without a ``redis-server`` binary they skip with a reason on a developer's machine, and FAIL under CI
(``CI=true``): a CI run that silently skipped the shared-state tests would report green for code it never ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_helpers import missing_server

from benchmarks.bench_redis import REDIS_SERVER, RedisServer


def _server() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        missing_server()
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
