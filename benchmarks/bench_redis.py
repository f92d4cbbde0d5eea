"""Aggregate rate of N processes sharing one Redis token bucket, and the bound it must never break.

Run: ``.venv/bin/python -m benchmarks.bench_redis [--processes 4 --rate 30 --burst 5 --seconds 5]`` (needs a
``redis-server`` binary; it starts its own on a free port in a temporary directory). The test suite
(``tests/redis``) reuses ``RedisServer`` and ``run_shared_limit``.

Grant times are the Redis server's clock at the moment each grant was made (``last_grant_time``), so the
check "grants in any window W <= rate * W + burst" holds across processes regardless of their own clocks.
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


def _worker(url: str, key: str, rate: float, burst: int, seconds: float, tasks: int, barrier: Any, out: Any) -> None:
    """One process: ``tasks`` asyncio tasks acquiring from the shared limiter for ``seconds``."""
    from langchain_ailib_resilience.state import RedisStateStore, SharedRateLimiter

    store = RedisStateStore(url)
    limiter = SharedRateLimiter(store, key, rate, burst, name="bench")

    async def run() -> tuple[list[float], int]:
        times: list[float] = []
        await store.atake(key, 0, rate, burst)  # connect and load the script before the clock starts
        barrier.wait()
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end:
                await limiter.aacquire_or_raise(timeout=None)
                # No await between the grant and this read: it is this grant's server time.
                assert limiter.last_grant_time is not None
                times.append(limiter.last_grant_time)

        await asyncio.gather(*(client() for _ in range(tasks)))
        await store.aclose()
        return times, limiter.fallbacks_total

    times, fallbacks = asyncio.run(run())
    store.close()
    out.put((os.getpid(), times, fallbacks))


@dataclass(frozen=True)
class SharedLimitResult:
    times: list[float]  # server time of every grant, sorted
    per_process: list[int]  # grants each process got
    processes: int
    rate: float
    burst: int
    seconds: float
    fallbacks: int

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
    try:
        for _ in procs:
            _, got, fell = out.get(timeout=seconds + 60)
            times.extend(got)
            per_process.append(len(got))
            fallbacks += fell
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return SharedLimitResult(sorted(times), per_process, processes, rate, burst, seconds, fallbacks)


def script_calls(url: str) -> int:
    """EVAL/EVALSHA calls the server has run: how many store round trips the limiter made."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=2, help="asyncio tasks per process")
    parser.add_argument("--url", help="use this Redis instead of starting one")
    ns = parser.parse_args()
    server = None
    url = ns.url
    if url is None:
        server = RedisServer()
        server.start()
        url = server.url
    try:
        before = script_calls(url)
        result = run_shared_limit(
            url, processes=ns.processes, rate=ns.rate, burst=ns.burst, seconds=ns.seconds, tasks=ns.tasks
        )
        calls = script_calls(url) - before
    finally:
        if server is not None:
            server.cleanup()
    span = result.times[-1] - result.times[0]
    print(f"processes={ns.processes} tasks/process={ns.tasks} rate={ns.rate:g}/s burst={ns.burst} run={ns.seconds:g}s")
    print(f"grants={len(result.times)} over {span:.3f}s (server clock); per process={result.per_process}")
    print(f"fallbacks to local limits={result.fallbacks}")
    print(f"steady aggregate rate = {result.steady_rate:.3f}/s (target {ns.rate:g}/s)")
    print(f"script calls per grant = {calls / len(result.times):.2f} (1.0 would be no failed takes at all)")
    print(f"worst window excess over rate*W+burst = {result.worst_excess():+.6f} (<= 0: bound held)")


if __name__ == "__main__":
    main()
