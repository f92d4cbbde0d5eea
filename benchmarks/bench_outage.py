"""Outage: the primary answers 503 and then hangs, the fallback is healthy; sequential requests.

The emulator (child process) scripts the primary model: its first 5 requests get a 503, every later one hangs for
3 s and closes without an answer; the fallback model always answers. Each contender sends the requests one after
another, and after each one the same client calls the fallback directly (the "bare" call), so the two latency
distributions see the same machine conditions; added latency = contender − the bare call right after it, per
request (p50/p99 of those paired differences).

Every contender gets the same budget: 3 attempts on the primary (2 retries, backoff from 0.05 s up to 0.5 s), a
0.5 s attempt timeout, then the fallback. Ours adds a circuit breaker (3 consecutive failures, 5 s cooldown, one
half-open probe), so after it opens a request should go straight to the fallback, and the primary should see
only the configured probes: 3 (to open) + 1 per cooldown that elapsed. Contenders that keep paying for the dead
primary cannot finish 500 requests in reasonable time; each has a wall-clock budget and the table says how far
it got.

A second table measures the same thing in-process, without HTTP noise: ``ResilientExecutor.execute_chain`` over a
primary that raises a 503-class error and a no-op fallback, against calling the fallback directly; and
``ResilientChatModel`` over a chat model that raises it with a healthy chat model as fallback, against calling that
fallback model directly.

Run alone: ``.venv/bin/python -m benchmarks.bench_outage [--quick]``.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything can import LiteLLM

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    OverloadedError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.config import RetryBudgetConfig
from langchain_ailib_resilience.registry import Registry, reset_registry

from ._emulator import RemoteEmulator, Spec
from ._llm import (
    FALLBACK,
    MESSAGES,
    PRIMARY,
    chat_litellm,
    litellm_kwargs,
    quiet_litellm,
    resilient_acompletion_fn,
    resilient_chat_model_cls,
)
from ._report import Options, Section, Table, Target, fmt, percentile, run_from_command_line

THRESHOLD = 3
COOLDOWN = 5.0
HALF_OPEN = 1
ATTEMPT_TIMEOUT = 0.5
RETRIES = 2
INITIAL, MAX_DELAY = 0.05, 0.5
FAILING_503 = 5
HANG = 3.0

AsyncCall = Callable[[], Awaitable[Any]]


def our_config() -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=RETRIES, initial_delay=INITIAL, max_delay=MAX_DELAY, budget=RetryBudgetConfig()),
        circuit_breaker=CircuitBreakerConfig(
            failure_threshold=THRESHOLD, cooldown_seconds=COOLDOWN, half_open_max_calls=HALF_OPEN
        ),
        attempt_timeout=ATTEMPT_TIMEOUT,
    )


@dataclass
class Run:
    name: str
    ours: bool
    pending: str = ""
    latencies: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)  # primary requests caused by request i
    failures: int = 0
    elapsed: float = 0.0
    opened_at: float | None = None  # seconds from start when the first request skipped the primary

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def primary_hits(self) -> int:
        return sum(self.hits)

    def allowance(self) -> int:
        """Primary requests the configuration allows: the threshold, plus one probe per elapsed cooldown."""
        if self.opened_at is None:
            return THRESHOLD
        return THRESHOLD + HALF_OPEN * math.floor((self.elapsed - self.opened_at) / COOLDOWN)

    def open_pairs(self) -> tuple[list[float], list[float]]:
        """(contender, bare) latencies of requests that did not reach the primary, after the first one."""
        skip = [i for i, h in enumerate(self.hits) if h == 0]
        return [self.latencies[i] for i in skip], [self.bare[i] for i in skip]


def contenders(
    base: str, quick: bool = False
) -> list[tuple[str, bool, Callable[[], tuple[AsyncCall, AsyncCall]] | str]]:
    """(name, ours, factory → (call through the contender, bare call to the fallback) or why it is pending).

    A quick run keeps ResilientChatModel and LangChain's chain (the Router needs ~5 s per request here)."""
    litellm = quiet_litellm()
    out: list[tuple[str, bool, Callable[[], tuple[AsyncCall, AsyncCall]] | str]] = []

    def bare_chat() -> AsyncCall:
        fallback = chat_litellm(base, FALLBACK)
        return lambda: fallback.ainvoke("hi")

    def bare_litellm() -> AsyncCall:
        kwargs = litellm_kwargs(base, FALLBACK)
        return lambda: litellm.acompletion(messages=MESSAGES, **kwargs)

    model_cls = resilient_chat_model_cls()
    name = "**ours: ResilientChatModel(primary, fallbacks=[fallback])**"
    if model_cls is None:
        out.append((name, True, "integrations/langchain.py missing"))
    else:

        def make_model() -> tuple[AsyncCall, AsyncCall]:
            model = model_cls(
                our_config(),
                model=f"openai/{PRIMARY}",
                fallbacks=[f"openai/{FALLBACK}"],
                litellm_kwargs={"api_base": base, "api_key": "bench-key"},
                registry=Registry(),
            )
            return (lambda: model.ainvoke("hi")), bare_chat()

        out.append((name, True, make_model))
    acompletion = resilient_acompletion_fn()
    name = "**ours: resilient_acompletion(primary, fallbacks=[fallback])**"
    if quick:
        pass
    elif acompletion is None:
        out.append((name, True, "integrations/litellm.py missing"))
    else:

        def make_acompletion() -> tuple[AsyncCall, AsyncCall]:
            config, registry = our_config(), Registry()
            primary = {k: v for k, v in litellm_kwargs(base, PRIMARY).items() if not k.endswith("retries")}
            fallback = {k: v for k, v in litellm_kwargs(base, FALLBACK).items() if not k.endswith("retries")}

            async def call() -> Any:
                return await acompletion(
                    messages=MESSAGES, config=config, registry=registry, fallbacks=[fallback], **primary
                )

            return call, bare_litellm()

        out.append((name, True, make_acompletion))

    def make_lc() -> tuple[AsyncCall, AsyncCall]:
        chain = (
            chat_litellm(base, PRIMARY, timeout=ATTEMPT_TIMEOUT)
            .with_retry(
                stop_after_attempt=RETRIES + 1,
                exponential_jitter_params={"initial": INITIAL, "max": MAX_DELAY, "jitter": INITIAL},
            )
            .with_fallbacks([chat_litellm(base, FALLBACK)])
        )
        return (lambda: chain.ainvoke("hi")), bare_chat()

    out.append(("LangChain `ChatLiteLLM.with_retry(3 attempts).with_fallbacks([fallback])`", False, make_lc))

    def make_router() -> tuple[AsyncCall, AsyncCall]:
        def params(model: str) -> dict[str, Any]:
            kwargs = litellm_kwargs(base, model, timeout=ATTEMPT_TIMEOUT)
            kwargs.pop("num_retries")
            return kwargs

        router = litellm.Router(
            model_list=[
                {"model_name": "primary", "litellm_params": params(PRIMARY)},
                {"model_name": "fallback", "litellm_params": params(FALLBACK)},
            ],
            num_retries=RETRIES,
            fallbacks=[{"primary": ["fallback"]}],
            timeout=ATTEMPT_TIMEOUT,
        )
        return (lambda: router.acompletion(model="primary", messages=MESSAGES)), bare_litellm()

    if not quick:
        out.append((f"LiteLLM `Router(num_retries={RETRIES}, fallbacks=[...])`", False, make_router))
    return out


async def drive(run: Run, call: AsyncCall, bare: AsyncCall, emu: RemoteEmulator, n: int, budget: float) -> None:
    await bare()  # warm the client's connection pool
    emu.call("clear_requests")
    start = time.perf_counter()
    seen = 0
    for _ in range(n):
        began = time.perf_counter()
        try:
            await call()
        except Exception:
            run.failures += 1
        ended = time.perf_counter()
        count = int(emu.call("count", PRIMARY))
        run.hits.append(count - seen)
        seen = count
        b0 = time.perf_counter()
        await bare()
        run.bare.append(time.perf_counter() - b0)
        run.latencies.append(ended - began)
        if run.opened_at is None and run.hits[-1] == 0 and len(run.hits) > 1:
            run.opened_at = began - start
        if time.perf_counter() - start > budget:
            break
    run.elapsed = time.perf_counter() - start


@dataclass
class InProcess:
    label: str
    bare_label: str
    ours: list[float] = field(default_factory=list)  # wall seconds per call through us, breaker open
    bare: list[float] = field(default_factory=list)  # wall seconds per direct call to the fallback
    ours_cpu: list[float] = field(default_factory=list)  # thread CPU seconds (immune to the OS running others)
    bare_cpu: list[float] = field(default_factory=list)
    primary_calls: int = 0


class _Counter:
    calls = 0


def _chat_models(down: _Counter) -> tuple[Any, Any]:
    """A chat model whose provider is down (503-class error) and a healthy one, both answering in-loop."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Down(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "bench-down"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            down.calls += 1
            raise OverloadedError("503 Service Unavailable", provider="bench")

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            return self._generate(messages)

    class Up(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "bench-up"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok"))])

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            return self._generate(messages)

    return Down(), Up()


async def _open_path(result: InProcess, ours: AsyncCall, bare: AsyncCall, calls: int) -> None:
    await ours()  # 3 attempts (2 short backoffs) open the breaker; the fallback answers
    await bare()
    wall, cpu = time.perf_counter, time.thread_time
    for _ in range(calls):
        c0, t0 = cpu(), wall()
        await ours()
        t1, c1 = wall(), cpu()
        await bare()
        t2, c2 = wall(), cpu()
        result.ours.append(t1 - t0)
        result.ours_cpu.append(c1 - c0)
        result.bare.append(t2 - t1)
        result.bare_cpu.append(c2 - c1)


def in_process(calls: int) -> list[InProcess]:
    """The open-breaker path without HTTP: the executor over plain callables, and ResilientChatModel."""
    out: list[InProcess] = []
    ex = ResilientExecutor(our_config(), registry=Registry())
    counter = _Counter()

    async def primary() -> None:
        counter.calls += 1
        raise OverloadedError("503 Service Unavailable", provider="bench")

    async def fallback() -> str:
        return "ok"

    chain = [("bench/primary", primary), ("bench/fallback", fallback)]
    executor_run = InProcess("**ours: `execute_chain([primary, fallback])`**", "bare `await fallback()`")
    asyncio.run(_open_path(executor_run, lambda: ex.execute_chain(chain), fallback, calls))
    executor_run.primary_calls = counter.calls
    out.append(executor_run)

    model_cls = resilient_chat_model_cls()
    if model_cls is not None:
        down = _Counter()
        primary_model, fallback_model = _chat_models(down)
        model = model_cls(our_config(), model=primary_model, fallbacks=[fallback_model], registry=Registry())
        model_run = InProcess(
            "**ours: `ResilientChatModel(down, fallbacks=[up]).ainvoke`**", "bare `up.ainvoke` (chat model)"
        )
        asyncio.run(
            _open_path(model_run, lambda: model.ainvoke("hi"), lambda: fallback_model.ainvoke("hi"), calls // 3)
        )
        model_run.primary_calls = down.calls
        out.append(model_run)
    return out


def run(opts: Options) -> Section:
    started = time.perf_counter()
    n = 40 if opts.quick else 500
    budget = 2.5 if opts.quick else 30.0
    emulator = RemoteEmulator().start()
    quiet_litellm()  # imports LiteLLM (seconds) while the emulator process starts
    runs: list[Run] = []
    with emulator as emu:
        base = emu.openai_base
        for name, ours, factory in contenders(base, opts.quick):
            result = Run(name, ours)
            runs.append(result)
            if isinstance(factory, str):
                result.pending = factory
                continue
            reset_registry()
            emu.call("reset")
            emu.call("script", PRIMARY, [Spec("503")] * FAILING_503)
            emu.call("set_default", PRIMARY, Spec(f"hang:{HANG:g}"))
            call, bare = factory()
            asyncio.run(drive(result, call, bare, emu, n, budget))
            if opts.verbose:
                print(f"  {name}: {result.done} requests, primary hits {result.primary_hits}, {result.elapsed:.1f}s")
    inproc = in_process(300 if opts.quick else 3000)
    return _section(runs, inproc, opts, n, budget, time.perf_counter() - started)


def _paired(a: list[float], b: list[float], q: float) -> float:
    """The q-th percentile of per-request differences (each request minus the bare call made right after it)."""
    return percentile([x - y for x, y in zip(a, b, strict=True)], q)


def _added(a: list[float], b: list[float], q: float) -> float:
    return percentile(a, q) - percentile(b, q)


def _section(
    runs: list[Run],
    inproc: list[InProcess],
    opts: Options,
    n: int,
    budget: float,
    seconds: float,
) -> Section:
    section = Section(
        "outage",
        "4. Outage: dead primary, healthy fallback",
        method=(__doc__ or "").split("\n\n", 1)[1].split("Run alone")[0].strip()
        + f"\n\nThis run: up to {n} requests or {budget:g} s per contender.",
        quick=opts.quick,
    )
    table = Table(
        [
            "client",
            "requests to dead primary",
            "primary requests per request",
            "requests done",
            "added p50 (ms)",
            "added p99 (ms)",
            "added p50 once open (ms)",
            "added p99 once open (ms)",
            "mean latency (ms)",
            "failed",
        ],
        caption="**Over HTTP (LiteLLM clients → emulator)**; added = request − the bare fallback call after it",
    )
    for r in runs:
        if r.pending:
            table.add(r.name, "pending", *(["–"] * 8))
            continue
        open_a, open_b = r.open_pairs()
        table.add(
            r.name,
            f"{r.primary_hits}" + (f" (allowed {r.allowance()})" if r.ours else ""),
            f"{r.primary_hits / max(r.done, 1):.2f}",
            f"{r.done} in {r.elapsed:.1f} s",
            fmt(_paired(r.latencies, r.bare, 50) * 1e3, 2),
            fmt(_paired(r.latencies, r.bare, 99) * 1e3, 2),
            fmt(_paired(open_a, open_b, 50) * 1e3, 2) if r.ours else "–",
            fmt(_paired(open_a, open_b, 99) * 1e3, 2) if r.ours else "–",
            fmt(sum(r.latencies) / max(r.done, 1) * 1e3, 1),
            r.failures,
        )
    section.tables.append(table)
    table2 = Table(
        [
            "path",
            "wall p50 (µs)",
            "wall p99 (µs)",
            "CPU p50 (µs)",
            "CPU p99 (µs)",
            "added wall p50 (µs)",
            "primary calls",
        ],
        caption="**In-process, no HTTP**, once the breaker is open (CPU = thread CPU time; added = paired difference)",
    )
    for ip in inproc:
        table2.add(
            ip.bare_label,
            *(fmt(percentile(v, q) * 1e6) for v in (ip.bare, ip.bare_cpu) for q in (50, 99)),
            "–",
            "–",
        )
        table2.add(
            f"{ip.label} ({len(ip.ours)} calls)",
            *(fmt(percentile(v, q) * 1e6) for v in (ip.ours, ip.ours_cpu) for q in (50, 99)),
            fmt(_paired(ip.ours, ip.bare, 50) * 1e6),
            f"{ip.primary_calls} (threshold {THRESHOLD})",
        )
    section.tables.append(table2)

    for r in runs:
        if not r.ours:
            continue
        label = r.name.strip("*").removeprefix("ours: ").split("(")[0]
        if r.pending:
            section.targets.append(Target(f"{label}: outage targets", "pending", r.pending))
            continue
        open_a, open_b = r.open_pairs()
        p50, p99 = _paired(open_a, open_b, 50), _paired(open_a, open_b, 99)
        section.targets.append(
            Target.check(
                f"{label}: no request to the dead primary beyond the configured probes",
                r.primary_hits <= r.allowance(),
                f"{r.primary_hits} primary requests, allowed {r.allowance()} "
                f"({THRESHOLD} to open + {HALF_OPEN} probe per {COOLDOWN:g} s cooldown over {r.elapsed:.1f} s)",
            )
        )
        section.targets.append(
            Target.check(
                f"{label}: ≤ 1 ms added latency once the breaker is open (HTTP, p50)",
                p50 <= 1e-3,
                f"p50 {p50 * 1e3:+.2f} ms (p99 {p99 * 1e3:+.2f} ms) over {len(open_a)} requests",
            )
        )
    for ip in inproc:
        w50, w99 = _paired(ip.ours, ip.bare, 50), _paired(ip.ours, ip.bare, 99)
        c99 = _added(ip.ours_cpu, ip.bare_cpu, 99)
        label = ip.label.strip("*").removeprefix("ours: ").strip("`").split("(")[0]
        section.targets.append(
            Target.check(
                f"{label}, in-process: ≤ 1 ms added once the breaker is open (wall p50, CPU p99); "
                f"primary calls = threshold",
                w50 <= 1e-3 and c99 <= 1e-3 and ip.primary_calls == THRESHOLD,
                f"wall p50 {w50 * 1e6:.0f} µs, CPU p99 {c99 * 1e6:.0f} µs (wall p99 {w99 * 1e6:.0f} µs), "
                f"{ip.primary_calls} primary calls",
            )
        )
    if any("Router" in r.name and not r.pending for r in runs):
        section.notes.append(
            f"LiteLLM Router: num_retries={RETRIES}, timeout={ATTEMPT_TIMEOUT:g} s, fallbacks to the healthy "
            "deployment; its wait between retries is LiteLLM's own backoff (seconds here, not 0.05 s: it has no "
            "initial-delay setting), and with one deployment per model group it keeps sending to the dead primary."
        )
    section.notes.append(
        "HTTP latency on a loaded 2-core machine jitters by milliseconds; added latency is a difference of "
        "quantiles of interleaved samples, so it can come out slightly negative, and a p99 over a few hundred "
        "requests mostly measures when the OS scheduled other processes. The targets therefore use the HTTP p50 "
        "and, in-process, the wall p50 and the p99 of thread CPU time (what the library itself spends, immune "
        "to preemption); wall p99 is shown beside them."
    )
    section.seconds = seconds
    return section


def main() -> None:
    run_from_command_line(run, __doc__)


if __name__ == "__main__":
    main()
