"""Goodput under a provider rate limit: 100 callers against an emulator that answers 429 + Retry-After above 20 req/s.

The emulator (``ProviderEmulator`` in a child process, so its timing does not share the client's GIL) enforces a
token bucket of 20 req/s on the model and answers every request over it with the OpenAI 429, ``Retry-After`` set
to the time until its next token. 100 caller tasks loop ``call → next call`` for the run's duration; a failed call
(retries exhausted) is counted and the caller goes on. Measured per contender: successful calls completed inside
the window ÷ duration, as a share of the provider's limit ("goodput"); 429s the provider sent, as a share of all
requests it received; p50/p99 latency of successful calls (queueing included); client CPU per success.

Two provider buckets: burst 5 (the limit tolerates 5 requests arriving at once, i.e. 0.25 s of arrival jitter —
providers state limits per minute, which tolerates far more) and burst 1 (strict: any two requests closer than
50 ms on arrival get a 429). A client pacing itself at exactly the limit passes the first; the second also
measures how evenly requests reach the provider after they leave the limiter.

Run alone: ``.venv/bin/python -m benchmarks.bench_goodput [--quick] [--duration 30] [--provider-burst 5 ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything can import LiteLLM

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    RateLimiterConfig,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.config import BackpressureConfig
from langchain_ailib_resilience.registry import Registry, reset_registry

from ._emulator import RemoteEmulator
from ._llm import (
    MESSAGES,
    PRIMARY,
    AsyncCall,
    chat_litellm,
    litellm_kwargs,
    quiet_litellm,
    resilient_acompletion_fn,
    resilient_chat_model_cls,
)
from ._report import Options, Section, Table, Target, fmt, percentile

LIMIT = 20.0
SEND_TIMES: list[float] = []  # when the executor contender's attempts left our limiter (time.monotonic)
CALLERS = 100
ATTEMPTS = 4  # one try + 3 retries, for every contender


@dataclass
class Result:
    name: str
    ours: bool
    successes: int = 0
    failures: int = 0
    requests: int = 0
    rejected_429: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    duration: float = 1.0
    errors: dict[str, int] = field(default_factory=dict)
    pending: str = ""
    gaps: str = ""  # spacing of attempts leaving our limiter vs arriving at the provider

    @property
    def goodput(self) -> float:
        return self.successes / self.duration

    @property
    def share_429(self) -> float:
        return self.rejected_429 / self.requests if self.requests else 0.0


def our_config() -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=ATTEMPTS - 1),
        rate_limiter=RateLimiterConfig(requests_per_second=LIMIT, burst_size=1, max_wait=60.0),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5, cooldown_seconds=5),
        backpressure=BackpressureConfig(max_inflight=50, max_queue=None, max_wait=60.0),
    )


def contenders(base: str, quick: bool = False) -> list[tuple[str, bool, Callable[[], AsyncCall] | str]]:
    """(name, ours, factory of the call — or the reason it is pending).

    A quick run keeps one of ours and LangChain's ``with_retry`` (the others take long to cancel)."""
    out: list[tuple[str, bool, Callable[[], AsyncCall] | str]] = []
    model_cls = resilient_chat_model_cls()
    if model_cls is not None:

        def make_model() -> AsyncCall:
            model = model_cls(
                our_config(),
                model=f"openai/{PRIMARY}",
                litellm_kwargs={"api_base": base, "api_key": "bench-key"},
                registry=Registry(),
            )
            return lambda: model.ainvoke("hi")

        out.append((f'**ours: ResilientChatModel("openai/{PRIMARY}"), RateLimiter 20/s**', True, make_model))
    else:
        out.append(("**ours: ResilientChatModel, RateLimiter 20/s**", True, "integrations/langchain.py missing"))
    acompletion = resilient_acompletion_fn()
    if acompletion is not None and not quick:

        def make_resilient_acompletion() -> AsyncCall:
            config, registry = our_config(), Registry()
            kwargs = litellm_kwargs(base, PRIMARY)
            del kwargs["max_retries"], kwargs["num_retries"]  # it forces both to 0 itself
            return lambda: acompletion(messages=MESSAGES, config=config, registry=registry, **kwargs)

        out.append(("**ours: resilient_acompletion, RateLimiter 20/s**", True, make_resilient_acompletion))

    def make_executor() -> AsyncCall:
        litellm = quiet_litellm()
        ex = ResilientExecutor(our_config(), registry=Registry())
        kwargs = litellm_kwargs(base, PRIMARY)
        SEND_TIMES.clear()

        async def send(**call_kwargs: Any) -> Any:
            SEND_TIMES.append(time.monotonic())  # the moment our limiter let this attempt go
            return await litellm.acompletion(**call_kwargs)

        return lambda: ex.execute(send, messages=MESSAGES, target=f"openai/{PRIMARY}", **kwargs)

    if not quick or model_cls is None:
        out.append(("**ours: ResilientExecutor around litellm.acompletion, RateLimiter 20/s**", True, make_executor))

    def make_with_retry() -> AsyncCall:
        chain = chat_litellm(base, PRIMARY).with_retry(stop_after_attempt=ATTEMPTS)
        return lambda: chain.ainvoke("hi")

    out.append((f"LangChain `ChatLiteLLM.with_retry(stop_after_attempt={ATTEMPTS})`", False, make_with_retry))

    def make_lc_limited() -> AsyncCall:
        from langchain_core.rate_limiters import InMemoryRateLimiter

        limiter = InMemoryRateLimiter(requests_per_second=LIMIT, max_bucket_size=1)
        chain = chat_litellm(base, PRIMARY, rate_limiter=limiter).with_retry(stop_after_attempt=ATTEMPTS)
        return lambda: chain.ainvoke("hi")

    if not quick:
        out.append(
            ("LangChain `ChatLiteLLM(rate_limiter=InMemoryRateLimiter(20)).with_retry()`", False, make_lc_limited)
        )

    def make_router() -> AsyncCall:
        litellm = quiet_litellm()
        params = litellm_kwargs(base, PRIMARY)
        params.pop("num_retries")
        router = litellm.Router(
            model_list=[{"model_name": "bench", "litellm_params": params}], num_retries=ATTEMPTS - 1
        )
        return lambda: router.acompletion(model="bench", messages=MESSAGES)

    if not quick:
        out.append((f"LiteLLM `Router(num_retries={ATTEMPTS - 1})`", False, make_router))
    return out


async def drive(call: AsyncCall, duration: float, result: Result, callers: int = CALLERS) -> None:
    start = time.perf_counter()
    end = start + duration

    async def caller() -> None:
        while True:
            began = time.perf_counter()
            try:
                await call()
            except Exception as exc:
                if time.perf_counter() < end:
                    result.failures += 1
                    name = type(exc).__name__
                    result.errors[name] = result.errors.get(name, 0) + 1
                await asyncio.sleep(0)  # a fast local rejection (open circuit) never awaits: let the clock run
                continue
            done = time.perf_counter()
            if done <= end:
                result.successes += 1
                result.latencies.append(done - began)

    cpu = time.process_time()
    tasks = [asyncio.create_task(caller()) for _ in range(callers)]
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.cpu = time.process_time() - cpu
    result.duration = duration


def run(opts: Options, provider_bursts: tuple[int, ...] | None = None) -> Section:
    """One table per provider burst: 5 (a limit with some tolerance, like a per-minute quota) and 1 (strict)."""
    started = time.perf_counter()
    duration = 2.5 if opts.quick else opts.duration
    bursts = provider_bursts or ((5,) if opts.quick else (5, 1))
    tables: list[tuple[int, list[Result]]] = []
    for burst in bursts:
        emulator = RemoteEmulator().start()
        quiet_litellm()  # imports LiteLLM (seconds) while the emulator process starts
        tables.append((burst, _measure(opts, duration, burst, emulator)))
    return _section(tables, opts, duration, time.perf_counter() - started)


def _measure(opts: Options, duration: float, provider_burst: int, emulator: RemoteEmulator) -> list[Result]:
    results: list[Result] = []
    # Cancelling LiteLLM mid-request at the end of a run leaves some of its inner coroutines un-awaited.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    with emulator as emu:
        base = emu.openai_base

        async def warm() -> None:
            litellm = quiet_litellm()
            await litellm.acompletion(messages=MESSAGES, **litellm_kwargs(base, PRIMARY))

        asyncio.run(warm())
        emu.call("rate_limit", PRIMARY, LIMIT, provider_burst)
        for name, ours, factory in contenders(base, opts.quick):
            result = Result(name, ours)
            results.append(result)
            if isinstance(factory, str):
                result.pending = factory
                continue
            reset_registry()
            time.sleep(0.5 if opts.quick else 1.0)  # the provider's bucket refills; stragglers finish
            emu.call("clear_requests")

            async def one(factory: Callable[[], AsyncCall] = factory, result: Result = result) -> None:
                await drive(factory(), duration, result)

            asyncio.run(one())
            counts = emu.summary(PRIMARY)
            if "ResilientExecutor" in name and SEND_TIMES:
                result.gaps = _gaps(SEND_TIMES, emu.call("timestamps", PRIMARY))
            result.requests = sum(counts.values())
            result.rejected_429 = counts.get("429", 0)
            if opts.verbose:
                print(f"  burst {provider_burst} {name}: {result.successes} ok, {result.failures} failed, {counts}")
    return results


def _gaps(sent: list[float], arrived: list[float]) -> str:
    """Quantiles of the spacing between consecutive requests, leaving the limiter and arriving at the provider."""

    def describe(times: list[float]) -> str:
        ordered = sorted(times)
        gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
        if not gaps:
            return "–"
        quantiles = "/".join(f"{percentile(gaps, q) * 1e3:.1f}" for q in (5, 50, 95))
        close = sum(gap < 1 / LIMIT - 1e-3 for gap in gaps) / len(gaps)
        return f"p5/p50/p95 {quantiles} ms, {close:.0%} closer than {1e3 / LIMIT - 1:.0f} ms"

    return f"leaving our limiter: {describe(sent)}; arriving at the provider: {describe(arrived)}"


def _section(tables: list[tuple[int, list[Result]]], opts: Options, duration: float, seconds: float) -> Section:
    section = Section(
        "goodput",
        "3. Goodput under a provider rate limit",
        method=(__doc__ or "").split("\n\n", 1)[1].split("Run alone")[0].strip()
        + f"\n\nThis run: {duration:g} s per contender, provider bucket {LIMIT:g} req/s with burst "
        + " and ".join(str(burst) for burst, _ in tables)
        + ", "
        f"{CALLERS} callers, every contender allowed {ATTEMPTS} attempts per call. Ours: RateLimiter "
        f"{LIMIT:g}/s burst 1 (max_wait 60 s), in-flight 50, breaker 5 failures / 5 s. LiteLLM model id "
        f"`openai/{PRIMARY}` against the emulator, SDK retries off.",
        quick=opts.quick,
    )
    for burst, results in tables:
        _table(section, results, duration, burst)
    if duration < 30:
        section.notes.append(
            f"The issue asks for 30 s per contender; this run used {duration:g} s "
            "(`python -m benchmarks --duration 30` for the full length)."
        )
    section.seconds = seconds
    return section


def _table(section: Section, results: list[Result], duration: float, burst: int) -> None:
    where = f"provider burst {burst}"
    table = Table(
        [
            "client",
            "goodput ÷ limit",
            "successes/s",
            "429s ÷ requests",
            "429s",
            "requests sent",
            "failed calls",
            "p50 latency (s)",
            "p99 latency (s)",
            "client CPU per success (ms)",
        ],
        caption=f"**{CALLERS} callers, provider limit {LIMIT:g} req/s, {where}, {duration:g} s**",
    )
    for r in results:
        if r.pending:
            table.add(r.name, "pending", *(["–"] * 8))
            continue
        table.add(
            r.name,
            f"{r.goodput / LIMIT:.3f}",
            fmt(r.goodput, 1),
            f"{r.share_429:.1%}",
            r.rejected_429,
            r.requests,
            r.failures,
            fmt(percentile(r.latencies, 50), 2),
            fmt(percentile(r.latencies, 99), 2),
            fmt(r.cpu / r.successes * 1e3, 1) if r.successes else "–",
        )
    section.tables.append(table)
    for r in results:
        if r.ours and r.pending:
            section.targets.append(Target(f"{where}: goodput and 429s for {r.name.strip('*')}", "pending", r.pending))
    for r in results:
        if not r.ours or r.pending:
            continue
        label = r.name.strip("*").removeprefix("ours: ").split(",")[0]
        section.targets.append(
            Target.check(
                f"{where}, {label}: goodput ≥ 95 % of the provider's limit",
                r.goodput >= 0.95 * LIMIT,
                f"{r.goodput:.2f} req/s = {r.goodput / LIMIT:.1%}",
            )
        )
        section.targets.append(
            Target.check(
                f"{where}, {label}: 429s ≤ 2 % of requests",
                r.share_429 <= 0.02,
                f"{r.rejected_429} of {r.requests} = {r.share_429:.1%}",
            )
        )
    if burst == 1:
        section.notes.append(
            "Provider burst 1: a 429 is the answer to any request arriving under 50 ms after the previous one. Our "
            "limiter spaces attempts ≥ 50 ms apart (the spacing note), but each LiteLLM call spends milliseconds "
            "of CPU on the single event loop before its bytes leave, interleaved with other calls' response "
            "processing, so arrival spacing spreads around 50 ms and a share of arrivals land early. No client-side "
            "limiter at exactly the limit can prevent that; pacing a few per cent under the limit, or a provider "
            "that tolerates a few requests of burst (burst 5 above), does."
        )
    for r in results:
        if r.gaps:
            section.notes.append(f"{where}, spacing of the executor contender's requests — {r.gaps}.")
    for r in results:
        if r.errors:
            detail = ", ".join(f"{k} × {v}" for k, v in sorted(r.errors.items(), key=lambda kv: -kv[1]))
            section.notes.append(f"{where}, {r.name.strip('*')}: failed calls by exception: {detail}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--provider-burst", type=int, action="append", help="repeatable; default 5 and 1")
    ns = parser.parse_args()
    opts = Options(quick=ns.quick, duration=ns.duration, verbose=True)
    print(run(opts, tuple(ns.provider_burst) if ns.provider_burst else None).markdown())


if __name__ == "__main__":
    main()
