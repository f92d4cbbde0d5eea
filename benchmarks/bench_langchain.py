"""ResilientChatModel's overhead: ``python -m benchmarks.bench_langchain [--quick] [--rounds N] [--calls N]``.

Every contender wraps the same ``GenericFakeChatModel`` (an in-memory model, so only wrapper cost is measured):
the bare model, ``ResilientChatModel(model=fake, fallbacks=[fake2])`` and LangChain's own
``fake.with_retry().with_fallbacks([fake2])``, all on the happy path. Rounds interleave the contenders and each
round's time is divided by the bare model's time in the same round, so machine noise cancels in the ratios
(the median ratio is reported). Times are this process's CPU time (``time.process_time``), so other load on a
shared machine does not count. Targets: at most 1.5 × the bare model, and faster than with_retry+with_fallbacks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel

from langchain_ailib_resilience import ResilientChatModel, ResilientConfig

TARGET_RATIO = 1.5


def _fake() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=itertools.cycle(["Hello! How can I help you today?"]))


class _Sink(BaseCallbackHandler):
    """A handler that does nothing: makes LangChain open (and us trace) every run."""


@dataclass
class Result:
    name: str
    per_call: list[float] = field(default_factory=list)  # µs per call, one value per round
    ratios: list[float] = field(default_factory=list)  # per round, over the baseline's time in that round

    @property
    def micros(self) -> float:
        return statistics.median(self.per_call)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 1.0


def _measure(contenders: dict[str, Callable[[], object]], rounds: int, calls: int) -> list[Result]:
    results = [Result(name) for name in contenders]
    fns = list(contenders.values())
    for fn in fns:  # warm up: imports, caches, lazily built targets
        for _ in range(max(50, calls // 4)):
            fn()
    gc.collect()
    gc.disable()
    try:
        for index in range(rounds):
            order = list(range(len(fns)))
            order = order[index % len(order) :] + order[: index % len(order)]  # rotate who goes first
            times: dict[int, float] = {}
            for i in order:
                fn = fns[i]
                started = time.process_time()
                for _ in range(calls):
                    fn()
                times[i] = (time.process_time() - started) / calls * 1e6
            for i, result in enumerate(results):
                result.per_call.append(times[i])
                result.ratios.append(times[i] / times[0])
    finally:
        gc.enable()
    return results


def _measure_async(contenders: dict[str, Callable[[], Awaitable[object]]], rounds: int, calls: int) -> list[Result]:
    loop = asyncio.new_event_loop()
    try:
        sync = {name: (lambda fn=fn: loop.run_until_complete(_batch(fn, 1))) for name, fn in contenders.items()}
        for fn in sync.values():
            for _ in range(20):
                fn()
        batched = {name: (lambda fn=fn: loop.run_until_complete(_batch(fn, calls))) for name, fn in contenders.items()}
        results = _measure(batched, rounds, 1)
    finally:
        loop.close()
    for result in results:
        result.per_call = [value / calls for value in result.per_call]
    return results


async def _batch(fn: Callable[[], Awaitable[object]], calls: int) -> None:
    for _ in range(calls):
        await fn()


def _table(title: str, results: list[Result]) -> list[str]:
    width = max(len(r.name) for r in results)
    lines = [title, f"  {'contender':<{width}}  {'µs/call':>9}  {'× bare':>7}"]
    for result in results:
        lines.append(f"  {result.name:<{width}}  {result.micros:9.1f}  {result.ratio:7.2f}")
    return lines


def _verdict(ours: Result, peer: Result) -> list[str]:
    vs_peer = statistics.median(o / p for o, p in zip(ours.ratios, peer.ratios, strict=True))
    met_bare = "met" if ours.ratio <= TARGET_RATIO else "MISSED"
    met_peer = "met" if vs_peer < 1.0 else "MISSED"
    return [
        f"  ResilientChatModel / bare model: {ours.ratio:.2f} × (target ≤ {TARGET_RATIO} ×: {met_bare})",
        f"  ResilientChatModel / with_retry+with_fallbacks: {vs_peer:.2f} × (target < 1 ×: {met_peer})",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_langchain", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 30; quick: 6)")
    parser.add_argument("--calls", type=int, default=200, help="calls per contender per round")
    ns = parser.parse_args(argv)
    rounds = ns.rounds or (6 if ns.quick else 30)
    calls = max(1, ns.calls // 4 if ns.quick else ns.calls)

    config = ResilientConfig()  # the defaults: breaker, in-flight limit, 3 retries with a budget; no rate limit
    bare = _fake()
    resilient = ResilientChatModel(config, model=_fake(), fallbacks=[_fake()])
    peer = _fake().with_retry().with_fallbacks([_fake()])
    traced = {"callbacks": [_Sink()]}

    print(f"python {platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs), {sys.platform}")
    print(f"{rounds} interleaved rounds × {calls} calls; µs/call is the median round, × bare the median ratio")
    print()
    sync_results = _measure(
        {
            "fake.invoke (bare)": lambda: bare.invoke("hi"),
            "ResilientChatModel.invoke": lambda: resilient.invoke("hi"),
            "fake.with_retry().with_fallbacks([fake2]).invoke": lambda: peer.invoke("hi"),
        },
        rounds,
        calls,
    )
    lines = _table("invoke, no callbacks (the untraced hot path)", sync_results)
    lines += _verdict(sync_results[1], sync_results[2])
    async_results = _measure_async(
        {
            "fake.ainvoke (bare)": lambda: bare.ainvoke("hi"),
            "ResilientChatModel.ainvoke": lambda: resilient.ainvoke("hi"),
            "fake.with_retry().with_fallbacks([fake2]).ainvoke": lambda: peer.ainvoke("hi"),
        },
        rounds,
        calls,
    )
    lines += ["", *_table("ainvoke, no callbacks", async_results)]
    lines += _verdict(async_results[1], async_results[2])
    traced_results = _measure(
        {
            "fake.invoke (bare, traced)": lambda: bare.invoke("hi", traced),  # type: ignore[arg-type]
            "ResilientChatModel.invoke (traced)": lambda: resilient.invoke("hi", traced),  # type: ignore[arg-type]
            "with_retry+with_fallbacks.invoke (traced)": lambda: peer.invoke("hi", traced),  # type: ignore[arg-type]
        },
        max(3, rounds // 3),
        calls,
    )
    lines += ["", *_table("invoke with a callback handler (chain run + child run per attempt)", traced_results)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
