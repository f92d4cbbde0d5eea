"""Aggregate rate of N processes sharing one Redis token bucket, and the bound it must never break.

Run: ``.venv/bin/python -m benchmarks.bench_redis [--processes 4 --rate 30 --burst 5 1 --seconds 5]`` (needs a
``redis-server`` binary; it starts its own on a free port in a temporary directory). One run per burst: burst 1 is
issue 14's "four processes sharing 30 req/s at burst 1" (bar 28.5-31.5 req/s). Then one TPM run per
``--token-burst``: the same processes calling through the executor with ``tokens_per_minute=--tpm`` on the store
(one target, one shared token bucket), 100 tokens a call; bar: the aggregate within +-5 % of the limit. The test
suite (``tests/redis``) reuses ``RedisServer`` and ``run_shared_limit``.

Grant times are the Redis server's clock at the moment each grant was made (``last_grant_time``; for a
reservation, the time it was due), so the check "grants in any window W <= rate * W + burst" holds across
processes regardless of their own clocks. TPM calls are timed by the wall clock as each call starts (one machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

REDIS_SERVER = shutil.which("redis-server")
RESOLUTION = 2e-6  # seconds: grant times are the script's whole microseconds, as epoch-second floats (~0.24 us)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1: no persistence, its own temporary directory, stoppable."""

    def __init__(self, binary: str | None = REDIS_SERVER) -> None:
        if binary is None:
            raise RuntimeError("redis-server not found on PATH")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ailib-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", self.dir, "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {err[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentServer:
    """A TCP port on 127.0.0.1 that accepts connections (into its backlog) and never answers a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.port = int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self._sock.close()


class LoopLag:
    """Measures how late the event loop runs a ticker that asks to wake every ``interval`` seconds.

    A sync network call on the loop shows up as one late tick of about its duration; ``max_lag`` is the worst.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - before - self.interval))

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    @property
    def max_lag(self) -> float:
        return max(self.lags, default=0.0)


def lag_config(url: str) -> Any:
    """A rate limit and a shared breaker on ``url``: every admission talks to the store."""
    from langchain_ailib_resilience import CircuitBreakerConfig, RateLimiterConfig, ResilientConfig, RetryConfig

    return ResilientConfig(
        retry=RetryConfig(max_retries=0),  # a failure is one call: the lag, not retry back-off, is measured
        state_url=url,
        share_breaker_state=True,
        rate_limiter=RateLimiterConfig(requests_per_second=1000, burst_size=50),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=0.05),
    )


async def lag_of_calls(
    url: str, *, calls: int = 20, concurrency: int = 4, target: str | None = None, sync_gate: bool = False
) -> LoopLag:
    """Loop lag while ``calls`` async executor calls (rate limit + shared breaker on ``url``) run.

    ``sync_gate=True`` reproduces what the async path did before it used ``redis.asyncio``: the same calls,
    gated by the sync preflight (sync Redis client) on the loop's thread.
    """
    from langchain_ailib_resilience.executor import ResilientExecutor
    from langchain_ailib_resilience.registry import Registry

    executor = ResilientExecutor(lag_config(url), registry=Registry())
    name = target or f"lag-{os.getpid()}-{time.monotonic_ns()}"
    flaky = iter(range(10**9))

    async def call() -> str:
        if next(flaky) % 3 == 0:  # some failures, so breaker transitions publish to the store too
            raise ConnectionError("upstream reset")
        await asyncio.sleep(0.001)
        return "ok"

    async def gated_by_sync_client() -> str:
        with executor.preflight.check(name):
            return await call()

    async def one() -> None:
        try:
            if sync_gate:
                await gated_by_sync_client()
            else:
                await executor.execute(call, target=name)
        except Exception:  # noqa: BLE001 - rejections and failures are part of the load, not the measurement
            pass

    async with LoopLag() as lag:
        for start in range(0, calls, concurrency):
            await asyncio.gather(*(one() for _ in range(min(concurrency, calls - start))))
            await asyncio.sleep(0.01)
    return lag


class LatenessClock:
    """The system clock, remembering how much later than asked each sleep ended: a waiter's wake-up lateness."""

    def __init__(self) -> None:
        from langchain_ailib_resilience import SystemClock

        self._inner = SystemClock()
        self.lateness: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        self._inner.sleep(seconds)
        self.lateness.append(max(0.0, time.perf_counter() - started - seconds))

    async def asleep(self, seconds: float) -> None:
        started = time.perf_counter()
        await self._inner.asleep(seconds)
        self.lateness.append(max(0.0, time.perf_counter() - started - seconds))


def _worker(url: str, key: str, rate: float, burst: int, seconds: float, tasks: int, barrier: Any, out: Any) -> None:
    """One process: ``tasks`` asyncio tasks acquiring from the shared limiter for ``seconds``."""
    from langchain_ailib_resilience.state import RedisStateStore, SharedRateLimiter

    store = RedisStateStore(url)
    clock = LatenessClock()
    limiter = SharedRateLimiter(store, key, rate, burst, name="bench", clock=clock)  # type: ignore[arg-type]

    async def run() -> tuple[list[float], list[float], int]:
        times: list[float] = []
        sent: list[float] = []  # wall clock as each grant returns to its caller: when it would be sent
        await store.atake(key, 0, rate, burst)  # connect and load the script before the clock starts
        barrier.wait()
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end:
                await limiter.aacquire_or_raise(timeout=None)
                # No await between the grant and this read: it is this grant's server time.
                assert limiter.last_grant_time is not None
                times.append(limiter.last_grant_time)
                sent.append(time.time())

        await asyncio.gather(*(client() for _ in range(tasks)))
        await store.aclose()
        return times, sent, limiter.fallbacks_total

    times, sent, fallbacks = asyncio.run(run())
    store.close()
    out.put((os.getpid(), times, sent, fallbacks, clock.lateness))


@dataclass(frozen=True)
class SharedLimitResult:
    times: list[float]  # server time of every grant, sorted
    per_process: list[int]  # grants each process got
    processes: int
    rate: float
    burst: int
    seconds: float
    fallbacks: int
    lateness: list[float]  # how much later than asked every limiter sleep ended, all processes
    sent: list[float]  # wall clock (one machine) as each grant returned to its caller, sorted

    def lateness_summary(self) -> str:
        """Sleeps per grant and their wake-up lateness (mean, p50, p99, in ms)."""
        late = sorted(self.lateness)
        if not late:
            return "sleeps per grant = 0.00"
        mean = sum(late) / len(late) * 1000
        p50, p99 = (late[min(len(late) - 1, int(q * len(late)))] * 1000 for q in (0.5, 0.99))
        return (
            f"sleeps per grant = {len(late) / len(self.times):.2f}; wake-up lateness mean {mean:.2f} ms, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )

    @property
    def steady_rate(self) -> float:
        """Grants per second once the initial burst is spent: (n - burst) / (last - first)."""
        span = self.times[-1] - self.times[0]
        return (len(self.times) - self.burst) / span if span > 0 else float("inf")

    def worst_excess(self) -> float:
        """max over windows [t_i, t_j] of grants - (rate * W + burst); <= 0 means the bound always held."""
        return worst_excess(self.times, self.rate, self.burst)


def worst_excess(times: list[float], rate: float, burst: float) -> float:
    ts = sorted(times)
    worst = float("-inf")
    for i in range(len(ts)):
        for j in range(i, len(ts)):
            worst = max(worst, (j - i + 1) - (rate * (ts[j] - ts[i]) + burst))
    return worst


def run_shared_limit(
    url: str, *, processes: int = 4, rate: float = 30.0, burst: int = 5, seconds: float = 5.0, tasks: int = 2
) -> SharedLimitResult:
    """Start ``processes`` spawned workers on one bucket, release them together, collect every grant time."""
    ctx = mp.get_context("spawn")
    key = f"ailib:rl:{{bench-{os.getpid()}-{time.monotonic_ns()}}}"
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, key, rate, burst, seconds, tasks, barrier, out), daemon=True)
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    times: list[float] = []
    per_process: list[int] = []
    fallbacks = 0
    lateness: list[float] = []
    sent: list[float] = []
    try:
        for _ in procs:
            _, got, went, fell, late = out.get(timeout=seconds + 60)
            times.extend(got)
            sent.extend(went)
            per_process.append(len(got))
            fallbacks += fell
            lateness.extend(late)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return SharedLimitResult(
        sorted(times), per_process, processes, rate, burst, seconds, fallbacks, lateness, sorted(sent)
    )


class _Usage:
    """A LiteLLM-shaped answer reporting the tokens it used."""

    def __init__(self, prompt: int, completion: int) -> None:
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion}


def _tpm_worker(
    url: str, target: str, tpm: float, token_burst: int, cost: tuple[int, int], used: tuple[int, int],
    seconds: float, tasks: int, barrier: Any, out: Any,
) -> None:  # fmt: skip
    """One process: ``tasks`` asyncio tasks calling through the executor, a token limit shared on ``url``."""
    from langchain_ailib_resilience import Candidate, RateLimiterConfig, ResilientConfig, RetryConfig
    from langchain_ailib_resilience.executor import ResilientExecutor
    from langchain_ailib_resilience.policies.tokens import TokenCost
    from langchain_ailib_resilience.registry import Registry

    limits = RateLimiterConfig(tokens_per_minute=tpm, token_burst=token_burst, max_wait=None)
    config = ResilientConfig(retry=RetryConfig(max_retries=0), state_url=url, rate_limiter=limits)
    executor = ResilientExecutor(config, registry=Registry())
    estimate = TokenCost(*cost)

    async def run() -> list[tuple[float, float]]:
        sent: list[tuple[float, float]] = []  # (wall time the call started, its tokens)
        token_limits = executor.state(target).token_limits
        assert token_limits is not None
        await token_limits.buckets["tokens"].store.atake("warm-up", 0, 1, 1)  # type: ignore[attr-defined]
        barrier.wait()
        end = time.monotonic() + seconds

        async def call(_ctx: Any) -> _Usage:
            sent.append((time.time(), float(sum(used))))
            return _Usage(*used)

        async def client() -> None:
            while time.monotonic() < end:
                await executor.run([Candidate(target, call, cost=lambda: estimate)])

        await asyncio.gather(*(client() for _ in range(tasks)))
        return sent

    sent = asyncio.run(run())
    out.put((os.getpid(), sent))


@dataclass(frozen=True)
class SharedTokenResult:
    sent: list[tuple[float, float]]  # (wall time, tokens) of every call, all processes, sorted
    per_process: list[int]
    tpm: float
    token_burst: int
    estimate: int  # tokens a call is estimated at (reserved before it)
    used: int  # tokens a call reports (reconciled after it)

    @property
    def steady_tpm(self) -> float:
        """Tokens per minute once the bucket's first fill is spent: (sent - burst) / (last - first) * 60."""
        span = self.sent[-1][0] - self.sent[0][0]
        total = sum(tokens for _, tokens in self.sent)
        return (total - self.token_burst) / span * 60 if span > 0 else float("inf")


def run_shared_tokens(
    url: str,
    *,
    processes: int = 4,
    tpm: float = 180_000.0,
    token_burst: int = 100,
    cost: tuple[int, int] = (60, 40),
    used: tuple[int, int] | None = None,
    seconds: float = 5.0,
    tasks: int = 2,
) -> SharedTokenResult:
    """``processes`` spawned workers, each an executor with ``tokens_per_minute=tpm`` on ``url`` (one target, so
    one shared token bucket), calling with ``cost`` tokens estimated and ``used`` (default: as estimated)
    reported, for ``seconds``. The aggregate counts the tokens reported."""
    ctx = mp.get_context("spawn")
    target = f"bench-tpm-{os.getpid()}-{time.monotonic_ns()}"
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    args = (url, target, tpm, token_burst, cost, used or cost, seconds, tasks, barrier, out)
    procs = [ctx.Process(target=_tpm_worker, args=args, daemon=True) for _ in range(processes)]
    for proc in procs:
        proc.start()
    sent: list[tuple[float, float]] = []
    per_process: list[int] = []
    try:
        for _ in procs:
            _, got = out.get(timeout=seconds + 60)
            sent.extend(got)
            per_process.append(len(got))
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return SharedTokenResult(sorted(sent), per_process, tpm, token_burst, sum(cost), sum(used or cost))


def script_calls(url: str) -> int:
    """EVAL/EVALSHA calls the server has run: how many store round trips the limiter made."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha"))


def loop_lag_table(url: str, calls: int = 60) -> list[str]:
    """Event-loop lag with a live and a silent Redis: the sync client on the loop (before) vs redis.asyncio."""
    silent = SilentServer()
    rows = ["| Redis | gate on the async path | calls | max loop lag | p99 loop lag | wall time |"]
    rows.append("|---|---|---|---|---|---|")
    try:
        for label, where in (("live", url), ("silent (accepts, never answers)", silent.url)):
            for gate, sync_gate in (("sync client on the loop (before)", True), ("redis.asyncio (now)", False)):
                started = time.perf_counter()
                lag = asyncio.run(lag_of_calls(where, calls=calls, sync_gate=sync_gate))
                wall = time.perf_counter() - started
                lags = sorted(lag.lags)
                p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else 0.0
                rows.append(
                    f"| {label} | {gate} | {calls} | {lag.max_lag * 1000:.1f} ms | {p99 * 1000:.1f} ms | {wall:.2f} s |"
                )
    finally:
        silent.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--burst", type=int, nargs="+", default=[5, 1], help="one run per burst")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=2, help="asyncio tasks per process")
    parser.add_argument("--url", help="use this Redis instead of starting one")
    parser.add_argument("--lag-calls", type=int, default=60, help="async calls per event-loop lag row")
    parser.add_argument("--tpm", type=float, default=180_000.0, help="the shared token limit (tokens/min)")
    parser.add_argument(
        "--token-burst", type=int, nargs="*", default=[500, 100], help="one TPM run per token bucket size"
    )
    parser.add_argument(
        "--no-over-usage",
        dest="over_usage",
        action="store_false",
        help="skip the TPM run whose calls report 20 %% more tokens than estimated",
    )
    ns = parser.parse_args()
    server = None
    url = ns.url
    if url is None:
        server = RedisServer()
        server.start()
        url = server.url
    runs: list[tuple[SharedLimitResult, int]] = []
    token_runs: list[tuple[SharedTokenResult, int]] = []
    try:
        for burst in ns.burst:
            before = script_calls(url)
            result = run_shared_limit(
                url, processes=ns.processes, rate=ns.rate, burst=burst, seconds=ns.seconds, tasks=ns.tasks
            )
            runs.append((result, script_calls(url) - before))
        for token_burst in ns.token_burst:
            before = script_calls(url)
            tokens = run_shared_tokens(
                url, processes=ns.processes, tpm=ns.tpm, token_burst=token_burst, seconds=ns.seconds, tasks=ns.tasks
            )
            token_runs.append((tokens, script_calls(url) - before))
        if ns.token_burst and ns.over_usage:
            before = script_calls(url)
            tokens = run_shared_tokens(
                url, processes=ns.processes, tpm=ns.tpm, token_burst=ns.token_burst[0], used=(60, 60),
                seconds=ns.seconds, tasks=ns.tasks,
            )  # fmt: skip
            token_runs.append((tokens, script_calls(url) - before))
        lag_rows = loop_lag_table(url, ns.lag_calls)
    finally:
        if server is not None:
            server.cleanup()
    for result, calls in runs:
        span = result.times[-1] - result.times[0]
        print(
            f"processes={ns.processes} tasks/process={ns.tasks} rate={ns.rate:g}/s burst={result.burst} "
            f"run={ns.seconds:g}s"
        )
        print(f"grants={len(result.times)} over {span:.3f}s (server clock); per process={result.per_process}")
        print(f"fallbacks to local limits={result.fallbacks}")
        print(f"steady aggregate rate = {result.steady_rate:.3f}/s (target {ns.rate:g}/s)")
        print(f"script calls per grant = {calls / len(result.times):.2f} (1.0 would be no failed takes at all)")
        print(result.lateness_summary())
        excess = result.worst_excess()
        verdict = "bound held" if excess <= RESOLUTION * result.rate else "BOUND BROKEN"
        print(f"worst window excess over rate*W+burst = {excess:+.6f} ({verdict}: <= 2 us of refill, the script's")
        print("  resolution: due times are whole microseconds, carried as epoch-second floats)")
        print(
            f"on wall-clock times as grants reach their callers (what a provider would see, wake-up jitter "
            f"included): worst window excess {worst_excess(result.sent, result.rate, result.burst):+.3f}"
        )
        print()
    for tokens, calls in token_runs:
        span = tokens.sent[-1][0] - tokens.sent[0][0]
        steady = tokens.steady_tpm
        if tokens.used == tokens.estimate:
            verdict, usage = ("met" if abs(steady / tokens.tpm - 1) <= 0.05 else "MISSED") + ": within +-5 %", ""
        else:
            verdict = "no bar: a charge beyond the estimate only empties the bucket, never below zero (tokens.py)"
            usage = f", usage {tokens.used} reported"
        print(
            f"TPM: processes={ns.processes} tasks/process={ns.tasks} tokens_per_minute={tokens.tpm:,.0f} "
            f"token_burst={tokens.token_burst} call estimated at {tokens.estimate} tokens{usage} run={ns.seconds:g}s"
        )
        print(f"calls={len(tokens.sent)} over {span:.3f}s (wall clock at each call's start)")
        print(f"calls per process={tokens.per_process}")
        print(
            f"steady aggregate (tokens reported) = {steady:,.0f} tokens/min = {steady / tokens.tpm:.4f} of the limit "
            f"({verdict})"
        )
        print(f"script calls per call = {calls / len(tokens.sent):.2f}")
        print()
    print("Event-loop lag: a ticker asks to wake every 2 ms while async calls (rate limit + shared breaker on")
    print("state_url) run, 4 at a time; lag = how late it woke. Silent = a TCP port that accepts and never answers.")
    print()
    print("\n".join(lag_rows))


if __name__ == "__main__":
    main()
