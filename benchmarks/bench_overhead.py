"""Happy-path overhead per call, async and sync: us against tenacity, stamina, breakers, limiters and LangChain.

Every wrapper calls a no-op (``async def noop(): return None`` / ``def noop(): return None``). Each candidate is
calibrated to a batch of ~10 ms, then the batches run in rounds, every round visiting every candidate in a rotated
order (so a burst of load on the 2-core machine hits all of them alike), with the garbage collector paused inside a
batch as ``timeit`` does. The per-call time of a candidate is its batch time / batch size; overhead is a candidate's
time minus the bare call's. The headline takes the min over rounds (the least disturbed run, as ``timeit``
recommends); the median is shown beside it.

Run alone: ``.venv/bin/python -m benchmarks.bench_overhead [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langchain_ailib_resilience import (
    Backpressure,
    CircuitBreaker,
    CircuitBreakerConfig,
    RateLimiter,
    RateLimiterConfig,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.config import BackpressureConfig
from langchain_ailib_resilience.registry import Registry

from ._report import Options, Section, Table, Target, fmt, median

SyncCall = Callable[[], Any]
AsyncCall = Callable[[], Awaitable[Any]]


async def anoop() -> None:
    return None


def noop() -> None:
    return None


@dataclass
class Candidate:
    name: str
    group: str
    call: Any  # SyncCall or AsyncCall
    is_async: bool
    n: int = 0
    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def med(self) -> float:
        return median(self.samples)


# --- our configuration ------------------------------------------------------------------------------------------


def full_config() -> ResilientConfig:
    """Retry + a limiter that never blocks + breaker + in-flight limit: every policy on the hot path."""
    return ResilientConfig(
        retry=RetryConfig(max_retries=3),
        rate_limiter=RateLimiterConfig(requests_per_second=1e9, burst_size=10**9),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5, cooldown_seconds=30),
        backpressure=BackpressureConfig(max_inflight=50),
    )


def retry_only_config() -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=3),
        circuit_breaker=CircuitBreakerConfig(enabled=False),
        backpressure=BackpressureConfig(max_inflight=None),
    )


def executor(config: ResilientConfig) -> ResilientExecutor:
    return ResilientExecutor(config, registry=Registry())


# --- candidates ---------------------------------------------------------------------------------------------------


def _resilient_chat_model() -> Any:
    """``ResilientChatModel`` if the LangChain integration exists yet, else ``None``."""
    try:
        from langchain_ailib_resilience.integrations.langchain import ResilientChatModel
    except ImportError:
        return None
    return ResilientChatModel


def _fake_chat(text: str = "hi") -> Any:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    return GenericFakeChatModel(messages=itertools.cycle([text]))


def async_candidates(notes: list[str]) -> list[Candidate]:
    import aiolimiter
    import stamina
    import tenacity
    from aiobreaker import CircuitBreaker as AioBreaker
    from langchain_core.runnables import RunnableLambda
    from purgatory import AsyncCircuitBreakerFactory

    out: list[Candidate] = []

    def add(name: str, group: str, call: AsyncCall) -> None:
        out.append(Candidate(name, group, call, True))

    add("bare `await noop()`", "baseline", anoop)

    ex_full = executor(full_config())

    async def ours_full() -> None:
        return await ex_full.execute(anoop, target="bench-async")

    add("**ours: ResilientExecutor.execute (retry+limiter+breaker+in-flight)**", "ours", ours_full)
    ex_retry = executor(retry_only_config())

    async def ours_retry() -> None:
        return await ex_retry.execute(anoop, target="bench-async-retry")

    add("ours: ResilientExecutor.execute (retry only)", "ours", ours_retry)

    stop, wait = tenacity.stop_after_attempt(4), tenacity.wait_exponential_jitter(initial=1, max=30)

    async def tenacity_loop() -> None:
        async for attempt in tenacity.AsyncRetrying(stop=stop, wait=wait, reraise=True):
            with attempt:
                return await anoop()
        return None

    add("tenacity `async for attempt in AsyncRetrying(...)`", "tenacity", tenacity_loop)
    shared = tenacity.AsyncRetrying(stop=stop, wait=wait, reraise=True)

    async def tenacity_call() -> None:
        return await shared(anoop)

    add("tenacity `await AsyncRetrying(...)(noop)` (instance reused)", "tenacity", tenacity_call)
    add("tenacity `@retry` on async", "tenacity", tenacity.retry(stop=stop, wait=wait, reraise=True)(anoop))
    add("stamina `@retry` on async", "stamina", stamina.retry(on=Exception, attempts=4)(anoop))

    aiobreaker = AioBreaker(fail_max=5)
    add("aiobreaker `@breaker` on async", "breaker", aiobreaker(anoop))
    factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    add("purgatory `@factory(...)` on async", "breaker", factory("bench")(anoop))
    breaker = CircuitBreaker(failure_threshold=5, cooldown_seconds=30)

    async def ours_breaker() -> Any:
        return await breaker.acall(anoop)

    add("ours: CircuitBreaker.acall", "breaker", ours_breaker)

    aio = aiolimiter.AsyncLimiter(1e9, 1)

    async def aiolimiter_call() -> None:
        async with aio:
            return await anoop()

    add("aiolimiter `async with`", "limiter", aiolimiter_call)
    limiter = RateLimiter(requests_per_second=1e9, burst_size=10**9)

    async def ours_limiter() -> None:
        await limiter.aacquire()
        return await anoop()

    add("ours: RateLimiter.aacquire", "limiter", ours_limiter)

    sem = asyncio.Semaphore(50)

    async def semaphore_call() -> None:
        async with sem:
            return await anoop()

    add("`asyncio.Semaphore` `async with`", "in-flight", semaphore_call)
    bp = Backpressure(50)

    async def ours_bp() -> None:
        async with bp:
            return await anoop()

    add("ours: Backpressure `async with`", "in-flight", ours_bp)

    async def timeout_call() -> None:
        async with asyncio.timeout(10):
            return await anoop()

    add("`async with asyncio.timeout(10)`", "timeout", timeout_call)

    lam = RunnableLambda(lambda _x: None, afunc=lambda _x: anoop())
    lam_retry = lam.with_retry(stop_after_attempt=4)

    async def lc_lambda() -> None:
        return await lam.ainvoke(None)

    async def lc_lambda_retry() -> None:
        return await lam_retry.ainvoke(None)

    add("LangChain `RunnableLambda.ainvoke`", "langchain", lc_lambda)
    add("LangChain `RunnableLambda.with_retry().ainvoke`", "langchain", lc_lambda_retry)

    fake, backup = _fake_chat(), _fake_chat("backup")
    lc_chain = fake.with_retry(stop_after_attempt=4).with_fallbacks([backup])

    async def chat_bare() -> Any:
        return await fake.ainvoke("hi")

    async def chat_lc() -> Any:
        return await lc_chain.ainvoke("hi")

    add("chat: bare `GenericFakeChatModel.ainvoke`", "chat", chat_bare)
    add("chat: `fake.with_retry().with_fallbacks([backup]).ainvoke`", "chat", chat_lc)
    model_cls = _resilient_chat_model()
    if model_cls is not None:
        resilient = model_cls(full_config(), model=_fake_chat(), fallbacks=[_fake_chat("backup")])

        async def chat_ours() -> Any:
            return await resilient.ainvoke("hi")

        add("**chat: ours `ResilientChatModel(fake, fallbacks=[backup]).ainvoke`**", "chat", chat_ours)
    else:
        notes.append(
            "ResilientChatModel rows pending: `langchain_ailib_resilience/integrations/langchain.py` does not "
            "exist yet (another engineer is building it)."
        )
    return out


def sync_candidates(notes: list[str]) -> list[Candidate]:
    import stamina
    import tenacity
    from aiobreaker import CircuitBreaker as AioBreaker
    from langchain_core.runnables import RunnableLambda
    from purgatory import SyncCircuitBreakerFactory

    out: list[Candidate] = []

    def add(name: str, group: str, call: SyncCall) -> None:
        out.append(Candidate(name, group, call, False))

    add("bare `noop()`", "baseline", noop)
    ex_full = executor(full_config())

    def ours_full() -> None:
        return ex_full.execute_sync(noop, target="bench-sync")

    add("**ours: ResilientExecutor.execute_sync (retry+limiter+breaker+in-flight)**", "ours", ours_full)
    ex_retry = executor(retry_only_config())

    def ours_retry() -> None:
        return ex_retry.execute_sync(noop, target="bench-sync-retry")

    add("ours: ResilientExecutor.execute_sync (retry only)", "ours", ours_retry)

    stop, wait = tenacity.stop_after_attempt(4), tenacity.wait_exponential_jitter(initial=1, max=30)

    def tenacity_loop() -> None:
        for attempt in tenacity.Retrying(stop=stop, wait=wait, reraise=True):
            with attempt:
                return noop()
        return None

    add("tenacity `for attempt in Retrying(...)`", "tenacity", tenacity_loop)
    shared = tenacity.Retrying(stop=stop, wait=wait, reraise=True)

    def tenacity_call() -> None:
        return shared(noop)

    add("tenacity `Retrying(...)(noop)` (instance reused)", "tenacity", tenacity_call)
    add("tenacity `@retry`", "tenacity", tenacity.retry(stop=stop, wait=wait, reraise=True)(noop))
    add("stamina `@retry`", "stamina", stamina.retry(on=Exception, attempts=4)(noop))
    aiobreaker = AioBreaker(fail_max=5)
    add("aiobreaker `@breaker`", "breaker", aiobreaker(noop))
    factory = SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    add("purgatory `@factory(...)`", "breaker", factory("bench")(noop))
    breaker = CircuitBreaker(failure_threshold=5, cooldown_seconds=30)

    def ours_breaker() -> Any:
        return breaker.call(noop)

    add("ours: CircuitBreaker.call", "breaker", ours_breaker)
    limiter = RateLimiter(requests_per_second=1e9, burst_size=10**9)

    def ours_limiter() -> None:
        limiter.acquire()
        return noop()

    add("ours: RateLimiter.acquire", "limiter", ours_limiter)
    sem = threading.BoundedSemaphore(50)

    def semaphore_call() -> None:
        with sem:
            return noop()

    add("`threading.BoundedSemaphore` `with`", "in-flight", semaphore_call)
    bp = Backpressure(50)

    def ours_bp() -> None:
        with bp:
            return noop()

    add("ours: Backpressure `with`", "in-flight", ours_bp)

    lam: RunnableLambda[Any, None] = RunnableLambda(lambda _x: None)
    lam_retry = lam.with_retry(stop_after_attempt=4)
    add("LangChain `RunnableLambda.invoke`", "langchain", lambda: lam.invoke(None))
    add("LangChain `RunnableLambda.with_retry().invoke`", "langchain", lambda: lam_retry.invoke(None))

    fake, backup = _fake_chat(), _fake_chat("backup")
    lc_chain = fake.with_retry(stop_after_attempt=4).with_fallbacks([backup])
    add("chat: bare `GenericFakeChatModel.invoke`", "chat", lambda: fake.invoke("hi"))
    add("chat: `fake.with_retry().with_fallbacks([backup]).invoke`", "chat", lambda: lc_chain.invoke("hi"))
    model_cls = _resilient_chat_model()
    if model_cls is not None:
        resilient = model_cls(full_config(), model=_fake_chat(), fallbacks=[_fake_chat("backup")])
        add(
            "**chat: ours `ResilientChatModel(fake, fallbacks=[backup]).invoke`**",
            "chat",
            lambda: resilient.invoke("hi"),
        )
    return out


# --- timing -------------------------------------------------------------------------------------------------------


def _time_sync(call: SyncCall, n: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - start) / n
    finally:
        gc.enable()


async def _time_async(call: AsyncCall, n: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            await call()
        return (time.perf_counter() - start) / n
    finally:
        gc.enable()


async def _measure(candidate: Candidate, n: int) -> float:
    if candidate.is_async:
        return await _time_async(candidate.call, n)
    return _time_sync(candidate.call, n)


async def calibrate(measure: Callable[[int], Awaitable[float]], batch_seconds: float) -> int:
    """The batch size for ~``batch_seconds`` (and a warm-up): the least disturbed of 3 trial batches sets it."""
    n = 8
    while True:
        per_call = min([await measure(n) for _ in range(3)])
        if per_call * n >= batch_seconds / 4 or n >= 1 << 20:
            break
        n *= 4
    return max(8, int(batch_seconds / max(per_call, 1e-9)))


async def measure_all(candidates: list[Candidate], rounds: int, batch_seconds: float) -> None:
    for candidate in candidates:
        candidate.n = await calibrate(lambda n, c=candidate: _measure(c, n), batch_seconds)
    for index in range(rounds):
        gc.collect()  # once a round, outside any batch; gc.freeze() in run() keeps this cheap
        shift = index % len(candidates)
        for candidate in candidates[shift:] + candidates[:shift]:
            candidate.samples.append(await _measure(candidate, candidate.n))


# --- report -------------------------------------------------------------------------------------------------------


def _table(candidates: list[Candidate], title: str) -> tuple[Table, dict[str, float]]:
    bare = candidates[0]
    ours = candidates[1]
    ours_over = ours.best - bare.best
    table = Table(
        [
            "wrapper",
            "overhead vs ours (×)",
            "overhead min (µs)",
            "overhead median (µs)",
            "per call min (µs)",
            "per call median (µs)",
            "calls/batch",
        ],
        caption=f"**{title}** — overhead = per-call time − bare call; ratio = this wrapper's overhead ÷ ours.",
    )
    overheads: dict[str, float] = {}
    for cand in candidates:
        over = cand.best - bare.best
        over_med = cand.med - bare.med
        overheads[cand.name] = over
        rel = "–" if cand is bare else ("1.00×" if cand is ours else f"{over / ours_over:.2f}×")
        table.add(
            cand.name,
            rel,
            fmt(over * 1e6, 2),
            fmt(over_med * 1e6, 2),
            fmt(cand.best * 1e6, 2),
            fmt(cand.med * 1e6, 2),
            cand.n,
        )
    return table, overheads


def _chat_ratio(candidates: list[Candidate]) -> str | None:
    by_group = [c for c in candidates if c.group == "chat"]
    if len(by_group) < 3:
        return None
    bare, lc, ours = by_group[0], by_group[1], by_group[2]
    ours_over, lc_over = ours.best - bare.best, lc.best - bare.best
    return (
        f"{ours_over * 1e6:.1f} µs vs {lc_over * 1e6:.1f} µs for with_retry().with_fallbacks() "
        f"(ratio {ours_over / lc_over:.2f})"
    )


def run(opts: Options) -> Section:
    started = time.perf_counter()
    rounds = 5 if opts.quick else 25
    batch = 0.004 if opts.quick else 0.012
    notes: list[str] = []
    async_cands = async_candidates(notes)
    sync_cands = sync_candidates(notes)
    gc.collect()
    gc.freeze()  # the imported libraries' objects stop being scanned, so collections between rounds are quick

    async def main() -> None:
        await measure_all(async_cands, rounds, batch)

    asyncio.run(main())
    asyncio.run(measure_all(sync_cands, rounds, batch))

    section = Section(
        "overhead",
        "1. Happy-path overhead per call",
        method=(
            f"Each wrapper around a no-op, {rounds} rounds of ~{batch * 1e3:.0f} ms batches, candidates interleaved "
            "(rotated order each round), GC paused inside a batch. Our executor runs with every policy on: retry "
            "(max_retries=3), a token bucket of 1e9/s (never blocks, but is consulted), a consecutive-failure "
            "breaker and an in-flight limit of 50. tenacity is configured alike (stop_after_attempt(4), "
            "wait_exponential_jitter, reraise=True), stamina with attempts=4. Target: our overhead ≤ ⅓ of "
            "tenacity's alone, checked against tenacity's *cheapest* form in this run."
        ),
        quick=opts.quick,
    )
    for label, cands in (("async", async_cands), ("sync", sync_cands)):
        table, overheads = _table(cands, f"{label} (µs per call)")
        section.tables.append(table)
        ours_over = overheads[cands[1].name]
        tenacity_forms = {name: value for name, value in overheads.items() if name.startswith("tenacity")}
        cheapest = min(tenacity_forms, key=lambda name: tenacity_forms[name])
        share = ours_over / tenacity_forms[cheapest]
        section.targets.append(
            Target.check(
                f"{label} full-executor overhead ≤ ⅓ of tenacity's ({cheapest.split('`')[1]})",
                share <= 1 / 3,
                f"{ours_over * 1e6:.2f} µs vs {tenacity_forms[cheapest] * 1e6:.2f} µs = {share:.2f} of tenacity's "
                f"({tenacity_forms[cheapest] / ours_over:.1f}× less)",
            )
        )
        chat = _chat_ratio(cands)
        if chat is not None:
            section.targets.append(Target(f"{label} ResilientChatModel overhead (no target)", "info", chat))
    if not any(c.group == "chat" and "ResilientChatModel" in c.name for c in async_cands):
        section.targets.append(
            Target(
                "ResilientChatModel overhead vs the bare fake model and with_retry().with_fallbacks()",
                "pending",
                "integrations/langchain.py not present yet",
            )
        )
    section.notes += notes
    section.notes.append(
        "Rows in **bold** are this package. `ours: RateLimiter/Backpressure/CircuitBreaker` rows are our policies "
        "used alone, next to the peer that does the same job."
    )
    section.seconds = time.perf_counter() - started
    return section


# --- profiling ----------------------------------------------------------------------------------------------------


def profile(calls: int = 200_000) -> None:
    """cProfile the async and sync full-executor hot paths; print the top costs."""
    import cProfile
    import pstats

    ex = executor(full_config())

    async def loop_async() -> None:
        for _ in range(calls):
            await ex.execute(anoop, target="profile-async")

    def loop_sync() -> None:
        for _ in range(calls):
            ex.execute_sync(noop, target="profile-sync")

    def run_async() -> None:
        asyncio.run(loop_async())

    runs: tuple[tuple[str, Callable[[], None]], ...] = (("async", run_async), ("sync", loop_sync))
    for label, fn in runs:
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        print(f"\n=== {label}: {calls} calls, top 15 by tottime ===")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile our hot path instead")
    ns = parser.parse_args()
    if ns.profile:
        profile()
        return
    print(run(Options(quick=ns.quick)).markdown())


if __name__ == "__main__":
    main()
