"""Where limiter state lives when ``state_url`` is set: shared across processes (Redis) or in-process (memory).

``ResilientConfig(state_url="redis://host:6379/0")`` (or ``AI_LIB_STATE_URL``) gives each target a
``SharedRateLimiter`` whose bucket is the Redis key ``ailib:rl:{<target>}``, shared by every process naming
that target. If Redis does not answer, each process enforces the same limits locally and its signals say
``state_backend="local-fallback"`` until Redis answers again. ``memory://`` keeps the buckets in-process.
With ``share_breaker_state=True``, ``build_breaker`` gives a ``SharedCircuitBreaker``: an opening on one
worker opens the target on all of them for its cooldown.
"""

from __future__ import annotations

import threading

from ..clock import Clock
from ..config import ConfigError, ResilientConfig
from ..policies.circuit_breaker import CircuitBreaker
from ..policies.pause import PauseGate
from ._breaker import SharedCircuitBreaker
from ._limiter import LOCAL_FALLBACK, SharedRateLimiter
from ._redis import BUCKET_SCRIPT, RedisStateStore, redact_url
from ._store import BucketReply, BucketStore, FlagStore, MemoryStateStore, StateStoreUnavailableError

KEY_PREFIX = "ailib:rl:"
BREAKER_KEY_PREFIX = "ailib:cb:"
PAUSE_KEY_PREFIX = "ailib:pause:"

_stores_lock = threading.Lock()
_redis_stores: dict[str, RedisStateStore] = {}


def bucket_key(target: str) -> str:
    """The store key of a target's bucket; the braces make it a Redis Cluster hash tag."""
    return f"{KEY_PREFIX}{{{target}}}"


def breaker_key(target: str) -> str:
    """The store key of a target's shared "circuit open" flag."""
    return f"{BREAKER_KEY_PREFIX}{{{target}}}"


def pause_key(target: str) -> str:
    """The store key of a target's shared pause (for targets with no rate limit, whose bucket would hold it)."""
    return f"{PAUSE_KEY_PREFIX}{{{target}}}"


def build_pause_gate(target: str, config: ResilientConfig, clock: Clock) -> PauseGate:
    """``target``'s pause gate, its pause shared through ``config.state_url`` when set."""
    if not config.state_url:
        return PauseGate(clock)
    return PauseGate(clock, _store_for(config.state_url, clock), pause_key(target))


def token_key(target: str, dimension: str) -> str:
    """The store key of one of a target's token buckets (same hash tag as its request bucket)."""
    return f"ailib:tk:{{{target}}}:{dimension}"


def build_token_bucket(
    target: str, dimension: str, config: ResilientConfig, clock: Clock, rate: float, burst: int
) -> SharedRateLimiter:
    """One of ``target``'s token buckets on ``config.state_url``: shared by every process, like its requests."""
    assert config.state_url
    return SharedRateLimiter(
        _store_for(config.state_url, clock),
        token_key(target, dimension),
        rate,
        burst,
        max_wait=config.rate_limiter.max_wait,
        clock=clock,
        name=f"{target} {dimension}",
    )


def redis_store(url: str) -> RedisStateStore:
    """One store (one connection pool) per URL in this process, shared by all its targets."""
    with _stores_lock:
        store = _redis_stores.get(url)
        if store is None:
            store = _redis_stores[url] = RedisStateStore(url)
        return store


def build_shared_limiter(
    target: str, config: ResilientConfig, clock: Clock, *, rate: float | None = None, burst: int | None = None
) -> tuple[SharedRateLimiter, str]:
    """The limiter for ``target`` on ``config.state_url``, and the backend it starts on (``rate``/``burst``:
    where to start instead of the configured ones, for an adaptive limiter).

    Never touches the network: connections open on first use, so an unreachable URL cannot stall start-up.
    """
    url, rl = config.state_url, config.rate_limiter
    rate = rate if rate is not None else rl.requests_per_second
    if not url or rate is None:
        raise ConfigError("build_shared_limiter needs state_url and rate_limiter.requests_per_second")
    limiter = SharedRateLimiter(
        _store_for(url, clock),
        bucket_key(target),
        rate,
        burst if burst is not None else rl.effective_burst,
        max_wait=rl.max_wait,
        clock=clock,
        name=target,
    )
    return limiter, limiter.backend


def build_breaker(target: str, config: ResilientConfig, clock: Clock) -> CircuitBreaker:
    """``target``'s breaker: shared through ``state_url`` when ``share_breaker_state`` is on, else local."""
    if not (config.share_breaker_state and config.state_url):
        return CircuitBreaker.from_config(config.circuit_breaker, clock=clock, name=target)
    options = config.circuit_breaker.model_dump(exclude={"enabled"})
    store = _store_for(config.state_url, clock)
    return SharedCircuitBreaker(store, breaker_key(target), clock=clock, name=target, **options)


def _store_for(url: str, clock: Clock) -> MemoryStateStore | RedisStateStore:
    if url.startswith("memory://"):
        return MemoryStateStore(clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return redis_store(url)
    raise ConfigError(f"state_url={redact_url(url)!r}: unsupported scheme (redis://, rediss://, unix://, memory://)")


__all__ = [
    "BREAKER_KEY_PREFIX",
    "BUCKET_SCRIPT",
    "KEY_PREFIX",
    "LOCAL_FALLBACK",
    "PAUSE_KEY_PREFIX",
    "BucketReply",
    "BucketStore",
    "FlagStore",
    "MemoryStateStore",
    "RedisStateStore",
    "SharedCircuitBreaker",
    "SharedRateLimiter",
    "StateStoreUnavailableError",
    "breaker_key",
    "bucket_key",
    "build_breaker",
    "build_pause_gate",
    "build_shared_limiter",
    "build_token_bucket",
    "pause_key",
    "redis_store",
    "token_key",
]
