"""Happy-path overhead of OpenTelemetry: not installed, installed but not configured, and an SDK configured.

The same call (our executor around a no-op, async and sync, and ``ResilientChatModel`` around a fake chat model)
is timed under four conditions, switched between batches:

- **no OTel**: the instrumentation uninstalled (``uninstrument()``), which is what a process without
  ``opentelemetry-api`` runs: no call observer at all;
- **no OTel (again)**: the same, timed as a separate candidate: the A/A control that shows the noise;
- **API, no SDK**: the default once ``opentelemetry-api`` is importable: the observer is asked at each call and
  declines (no global provider set), so no event is built;
- **SDK, in-memory**: ``instrument()`` with an SDK ``TracerProvider`` (``SimpleSpanProcessor`` into an
  ``InMemorySpanExporter``, cleared between batches) and a ``MeterProvider`` with an ``InMemoryMetricReader``:
  two spans and one counter add per call.

Batches of ~10 ms, the conditions in a rotated order each round, GC paused inside a batch (as in
``bench_overhead``); the headline is the min over rounds, the median beside it. "Within noise" means the
unconfigured condition's extra cost (min over rounds) is no larger than the spread between rounds of the bare
no-OTel condition (its interquartile range) or the A/A gap, whichever is larger.

Run alone: ``.venv/bin/python -m benchmarks.bench_otel [--quick]``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from langchain_ailib_resilience import ResilientChatModel
from langchain_ailib_resilience.observability import _otel, instrument, uninstrument

from ._report import Options, Section, Table, Target, fmt, median, percentile, run_from_command_line
from .bench_overhead import _fake_chat, _time_async, _time_sync, anoop, calibrate, executor, full_config, noop

CONDITIONS = ("no OTel", "no OTel (again)", "API, no SDK", "SDK, in-memory")


@dataclass
class Workload:
    name: str
    call: Any
    is_async: bool
    n: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CONDITIONS})


class Conditions:
    """Switches the process between the four conditions (outside any timed batch)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def set(self, condition: str) -> None:
        self.exporter.clear()
        if condition.startswith("no OTel"):
            uninstrument()
        elif condition == "API, no SDK":
            instrument()
        else:
            instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def close(self) -> None:
        instrument()  # back to the default: global providers, none configured
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


def workloads() -> list[Workload]:
    ex_async, ex_sync = executor(full_config()), executor(full_config())
    model = ResilientChatModel(full_config(), model=_fake_chat(), fallbacks=[_fake_chat("backup")])

    async def executor_async() -> None:
        return await ex_async.execute(anoop, target="bench-otel-async")

    def executor_sync() -> None:
        return ex_sync.execute_sync(noop, target="bench-otel-sync")

    async def chat_async() -> Any:
        return await model.ainvoke("hi")

    return [
        Workload("ResilientExecutor.execute (every policy on)", executor_async, True),
        Workload("ResilientExecutor.execute_sync (every policy on)", executor_sync, False),
        Workload("ResilientChatModel(fake, fallbacks=[backup]).ainvoke", chat_async, True),
    ]


async def _measure(workload: Workload, n: int) -> float:
    if workload.is_async:
        return await _time_async(workload.call, n)
    return _time_sync(workload.call, n)


async def measure(items: list[Workload], conditions: Conditions, rounds: int, batch_seconds: float) -> None:
    for item in items:  # each condition's own batch size: the SDK's calls are ten times slower
        for condition in CONDITIONS:
            conditions.set(condition)
            item.n[condition] = await calibrate(lambda n, w=item: _measure(w, n), batch_seconds)
    for index in range(rounds):
        gc.collect()
        order = CONDITIONS[index % 4 :] + CONDITIONS[: index % 4]
        for item in items:
            for condition in order:
                conditions.set(condition)
                await _measure(item, 8)  # the switch's first call (a fresh observer) stays out of the batch
                item.samples[condition].append(await _measure(item, item.n[condition]))


def _iqr(values: list[float]) -> float:
    return percentile(values, 75) - percentile(values, 25)


def run(opts: Options) -> Section:
    started = time.perf_counter()
    rounds = 6 if opts.quick else 30
    batch = 0.004 if opts.quick else 0.010
    assert not _otel._sdk_configured(), "a global OpenTelemetry provider is set: the baseline would not be bare"
    items = workloads()
    conditions = Conditions()
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(measure(items, conditions, rounds, batch))
    finally:
        conditions.close()

    section = Section(
        "otel",
        "1b. Overhead of OpenTelemetry on the happy path",
        method=(
            f"The same call under four conditions switched between batches ({rounds} rounds of ~{batch * 1e3:.0f} "
            "ms batches, conditions in rotated order, GC paused inside a batch): the instrumentation uninstalled "
            "(what a process without `opentelemetry-api` runs), the same again (A/A control), the default with "
            "`opentelemetry-api` importable and no SDK configured, and an SDK configured (`SimpleSpanProcessor` "
            "into an `InMemorySpanExporter`, an `InMemoryMetricReader`). Δ = per-call time (min over rounds) − "
            "the no-OTel time. Noise = the larger of the A/A gap and the interquartile range of the no-OTel "
            "rounds. Executor rows: every policy on (retry, limiter, breaker, in-flight), as in section 1."
        ),
        quick=opts.quick,
    )
    table = Table(
        [
            "call",
            "no OTel (µs)",
            "noise (µs)",
            "Δ API, no SDK (µs)",
            "Δ SDK, in-memory (µs)",
            "Δ API, no SDK, median (µs)",
            "Δ SDK, median (µs)",
            "calls/batch (no OTel, SDK)",
        ],
        caption="**Per call, µs** — min over rounds; the median columns compare the medians.",
    )
    for item in items:
        base = item.samples["no OTel"]
        best = {c: min(v) for c, v in item.samples.items()}
        med = {c: median(v) for c, v in item.samples.items()}
        noise = max(abs(best["no OTel (again)"] - best["no OTel"]), _iqr(base))
        api, sdk = best["API, no SDK"] - best["no OTel"], best["SDK, in-memory"] - best["no OTel"]
        table.add(
            item.name,
            fmt(best["no OTel"] * 1e6, 2),
            fmt(noise * 1e6, 2),
            fmt(api * 1e6, 2),
            fmt(sdk * 1e6, 2),
            fmt((med["API, no SDK"] - med["no OTel"]) * 1e6, 2),
            fmt((med["SDK, in-memory"] - med["no OTel"]) * 1e6, 2),
            f"{item.n['no OTel']}, {item.n['SDK, in-memory']}",
        )
        section.targets.append(
            Target.check(
                f"{item.name}: with `opentelemetry-api` installed but no SDK, overhead within noise of no OTel",
                api <= noise,
                f"Δ {api * 1e6:+.2f} µs on {best['no OTel'] * 1e6:.2f} µs (noise {noise * 1e6:.2f} µs)",
            )
        )
        section.targets.append(
            Target(
                f"{item.name}: with an SDK configured (in-memory exporter and reader)",
                "info",
                f"+{sdk * 1e6:.1f} µs per call ({sdk / best['no OTel'] * 100:.0f} % of the call without OTel)",
            )
        )
    section.tables.append(table)
    section.notes.append(
        "Without an SDK the instrumentation costs one observer call per call (it reads the API's two provider "
        "globals and declines), about 0.1 µs: systematic, but inside the run-to-run noise on this machine."
    )
    section.notes.append(
        "The SDK rows are the cost of our instrumentation plus the SDK's own span and metric recording with the "
        "cheapest exporter; a real exporter (OTLP through a `BatchSpanProcessor`) adds its queueing on top."
    )
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
