"""Token buckets (and breaker flags) in Redis: one Lua script, atomic, on the server's clock, sync and asyncio.

Why a script rather than the ``limits`` library: the limiter needs the wait (so waiters sleep exactly, never
poll), weighted and fractional amounts, a separate rate and burst, and one clock for every process. ``limits``
answers allowed/denied with a window reset time, takes the timestamp from the calling process, and offers
window strategies rather than a token bucket. One ~20-line script over redis-py (already an optional
dependency) does exactly what is needed; Valkey and Redis Cluster run it unchanged (one key per call).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..errors.redact import redact_url as redact_url
from ._store import BucketReply, StateStoreUnavailableError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

# KEYS[1]: the bucket (hash: level, stamp in µs). ARGV: rate (tokens/s), burst, tokens (>0 take, <0 give back,
# 0 peek), pause (seconds; > 0: nothing granted before then, kept as debt), reserve (seconds: a take needing at
# most this long is made now as debt, due after -wait), due (µs: the give-back is of a reservation due then).
# Returns {wait_µs (0: done; < 0: reserved, due in -wait), server_time_µs, level}. Line for line
# ``policies._bucket.apply_bucket``, the one bucket arithmetic.
# Time comes from the server (TIME), so processes with skewed clocks agree. Lua numbers become Redis integers by
# truncation, hence whole microseconds and the level as a string. Only a change is written; an idle bucket
# expires once it would have refilled anyway.
BUCKET_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local pause = tonumber(ARGV[4] or '0')
local reserve = tonumber(ARGV[5] or '0')
local due = tonumber(ARGV[6] or '0')
local b = redis.call('HMGET', KEYS[1], 'level', 'stamp')
local level = tonumber(b[1])
local stamp = tonumber(b[2])
if level == nil or stamp == nil then
  level = burst
  stamp = now
elseif now > stamp then
  level = level + (now - stamp) * rate / 1000000
  stamp = now
end
level = math.min(burst, level)
if pause > 0 then
  level = math.min(level, 1 - pause * rate)
end
local wait = 0
local changed = pause > 0
if want > 0 then
  if level + 1e-9 >= want then
    level = level - want
    changed = true
  else
    wait = math.max(1, math.ceil((want - level) * 1000000 / rate))
    if wait <= reserve * 1000000 then
      wait = -wait
      level = level - want
      changed = true
    end
  end
elseif want < 0 then
  if not (due > 0 and level < 0 and stamp - level * 1000000 / rate > due + 2) then
    level = math.min(burst, level - want)
    changed = true
  end
end
if changed then
  redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level), 'stamp', string.format('%d', stamp))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - level) * 1000 / rate) + 1000)
end
return {wait, now, string.format('%.17g', level)}
"""

# Raise a flag for ARGV[1] ms unless it is already up for longer; TTLs are server-side, so no clock is shared.
FLAG_SCRIPT = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""

DEFAULT_SOCKET_TIMEOUT = 0.25
MAX_RESERVE = 1e9  # seconds; the script gets a finite number for "any wait" (Lua's tonumber reads no 'inf')


def _redis_modules() -> tuple[Any, Any]:
    try:
        import redis
        import redis.asyncio
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "state_url=redis://... needs the redis package: pip install 'langchain-ailib-resilience[redis]'"
        ) from None
    return redis, redis.asyncio


def _args(tokens: float, rate: float, burst: float, pause: float, reserve: float, due: float) -> list[str]:
    args = [repr(float(rate)), repr(float(burst)), repr(float(tokens)), repr(float(pause))]
    if reserve > 0 or due > 0:
        args += [repr(min(float(reserve), MAX_RESERVE)), str(round(due * 1e6))]
    return args


def _parse(raw: Any) -> BucketReply:
    wait_us, now_us, level = raw
    return BucketReply(int(wait_us) / 1e6, float(level), int(now_us) / 1e6)


class RedisStateStore:
    """Token buckets in Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``).

    Every call is bounded by ``socket_timeout`` (connect and read, no client-side retries): an unreachable or
    stalled server raises ``StateStoreUnavailableError`` within that, and the caller falls back. Connections
    are made lazily, so building a store never touches the network. asyncio clients are kept per event loop
    (a redis.asyncio connection belongs to the loop that opened it).
    """

    name = "redis"

    def __init__(self, url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> None:
        redis_mod, _ = _redis_modules()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.socket_timeout = socket_timeout
        self._errors: tuple[type[BaseException], ...] = (redis_mod.RedisError, OSError)
        self._client: redis.Redis = redis_mod.Redis.from_url(url, **self._options(Retry(NoBackoff(), 0)))
        self._script = self._client.register_script(BUCKET_SCRIPT)
        self._flag_script = self._client.register_script(FLAG_SCRIPT)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._async_lock = threading.Lock()

    def _options(self, retry: Any) -> dict[str, Any]:
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            "retry": retry,
            "health_check_interval": 0,
        }

    def _async_client(self) -> tuple[Any, Any, Any]:
        """This loop's (client, bucket script, flag script); made on first use, no network until awaited."""
        loop = asyncio.get_running_loop()
        with self._async_lock:
            entry = self._async.get(loop)
            if entry is None:
                _, aredis = _redis_modules()
                from redis.asyncio.retry import Retry as AsyncRetry
                from redis.backoff import NoBackoff

                client = aredis.Redis.from_url(self.url, **self._options(AsyncRetry(NoBackoff(), 0)))
                entry = (client, client.register_script(BUCKET_SCRIPT), client.register_script(FLAG_SCRIPT))
                self._async[loop] = entry
            return entry

    def _unavailable(self, exc: BaseException) -> StateStoreUnavailableError:
        return StateStoreUnavailableError(f"{type(exc).__name__}: {exc}")

    def take(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply:
        try:
            return _parse(self._script(keys=[key], args=_args(tokens, rate, burst, pause, reserve, due)))
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def atake(
        self,
        key: str,
        tokens: float,
        rate: float,
        burst: float,
        pause: float = 0.0,
        reserve: float = 0.0,
        due: float = 0.0,
    ) -> BucketReply:
        try:
            script = self._async_client()[1]
            raw = await script(keys=[key], args=_args(tokens, rate, burst, pause, reserve, due))
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return _parse(raw)

    async def araise_flag(self, key: str, seconds: float) -> None:
        try:
            await self._async_client()[2](keys=[key], args=[max(1, math.ceil(seconds * 1000))])
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def aflag_remaining(self, key: str) -> float:
        try:
            millis = int(await self._async_client()[0].pttl(key))
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return max(0, millis) / 1000

    def raise_flag(self, key: str, seconds: float) -> None:
        try:
            self._flag_script(keys=[key], args=[max(1, math.ceil(seconds * 1000))])
        except self._errors as exc:
            raise StateStoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def flag_remaining(self, key: str) -> float:
        try:
            millis = int(self._client.pttl(key))
        except self._errors as exc:
            raise StateStoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        return max(0, millis) / 1000

    def server_time(self) -> float:
        """The server's clock (``TIME``) in seconds since the epoch: the scale of ``BucketReply.time``."""
        try:
            seconds, micros = self._client.time()
        except self._errors as exc:
            raise StateStoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        return int(seconds) + int(micros) / 1e6

    def close(self) -> None:
        """Close the sync connection pool (asyncio clients close with ``aclose`` on their own loop)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close this event loop's asyncio client, if one was opened."""
        with self._async_lock:
            entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()

    def __repr__(self) -> str:
        return f"RedisStateStore({redact_url(self.url)!r})"
