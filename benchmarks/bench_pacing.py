"""Pacing: 60 callers against a provider's limits, through each of this package's entry points and beside its peers.

The emulator (``ProviderEmulator`` in a child process) enforces the provider's limits as token buckets and answers
every request over them with the OpenAI 429 and ``retry-after``/``retry-after-ms``; in the header scenarios every
answer also carries ``x-ratelimit-{limit,remaining,reset}-*``. 60 caller tasks loop ``call → next call`` for the
run's duration. Goodput: successful calls completed inside the window ÷ duration, as a share of the provider's
request limit (token scenario: tokens those calls counted at the provider ÷ the provider's token capacity over the
window, i.e. its rate × duration plus the bucket it starts with). 429s: as a share of all requests the provider
received. Every contender gets 4 attempts per call, and makes one call before the window (its clients and caches
built, as in a process that has been serving), after which the provider's buckets start full again.

Ours: ``ResilientChatModel``, ``resilient_acompletion``, and ``ResilienceCallback`` gating a LiteLLM ``Router``
(``num_retries=3``; the Router's retries pass the gate). Peers: LiteLLM ``Router`` with the deployment's ``rpm``/
``tpm`` set (``usage-based-routing-v2``, which enforces them per calendar minute), LangChain ``ChatLiteLLM`` with
``InMemoryRateLimiter`` and ``with_retry``, and plain ``litellm.acompletion(num_retries=3)``; in the scenarios where
nothing is configured the peers run unconfigured too (what a user who does not know the limit can do). A scenario
needing a ``RateLimiterConfig`` field this package does not have yet reports our rows as not available.

Grant to send: on the LiteLLM paths (``resilient_acompletion`` and the callback), the time from our limiter's grant
(the call's ``attempt`` event, heard through ``events.observe_calls``) to the request's arrival at the emulator
(loopback and the server thread's wake-up included), matched per call through the request's ``user`` field.

Run alone: ``.venv/bin/python -m benchmarks.bench_pacing [--quick] [--duration 10] [--scenario strict ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import itertools
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything can import LiteLLM

from langchain_ailib_resilience import CircuitBreakerConfig, RateLimiterConfig, ResilientConfig, RetryConfig
from langchain_ailib_resilience.config import BackpressureConfig
from langchain_ailib_resilience.events import EventListener, ResilienceEvent, observe_calls
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
from .bench_goodput import Result, drive

LIMIT = 20.0
CALLERS = 60
ATTEMPTS = 4
TPM = 60_000
TOKEN_BURST = 1_000  # the token provider's bucket: one second of its limit (a minute's would hide any burst)
MAX_TOKENS = 100


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    provider: dict[str, Any]  # ProviderEmulator.rate_limit keyword arguments
    limiter: dict[str, Any]  # our RateLimiterConfig; a field it does not have makes our rows "not available yet"
    configured: bool  # the peers get the limit configured
    bar_goodput: float
    bar_429: float
    tokens: bool = False

    @property
    def missing(self) -> list[str]:
        return [name for name in self.limiter if name not in RateLimiterConfig.model_fields]


SCENARIOS = (
    Scenario(
        "burst5",
        "provider 20 req/s burst 5, our limiter configured at 20 req/s",
        {"rps": LIMIT, "burst": 5},
        {"requests_per_second": LIMIT, "burst_size": 1},
        True,
        0.97,
        0.01,
    ),
    Scenario(
        "strict",
        "provider 20 req/s burst 1 (strict spacing), our limiter configured at 20 req/s",
        {"rps": LIMIT, "burst": 1},
        {"requests_per_second": LIMIT, "burst_size": 1},
        True,
        0.90,
        0.02,
    ),
    Scenario(
        "adaptive-headers",
        "provider 20 req/s burst 5 with OpenAI rate-limit headers, nothing configured, adaptive=True",
        {"rps": LIMIT, "burst": 5, "headers": "openai"},
        {"adaptive": True},
        False,
        0.95,
        0.02,
    ),
    Scenario(
        "adaptive-bare",
        "provider 20 req/s burst 5, bare 429s (no headers at all), nothing configured, adaptive=True",
        {"rps": LIMIT, "burst": 5, "headers": "none"},
        {"adaptive": True},
        False,
        0.90,
        0.05,
    ),
    Scenario(
        "tpm",
        f"provider {TPM:,} tokens/min (bucket {TOKEN_BURST:,}), no request limit, tokens_per_minute={TPM:,}",
        {"tokens_per_minute": TPM, "token_burst": TOKEN_BURST},
        {"tokens_per_minute": TPM},
        True,
        0.90,
        0.02,
        tokens=True,
    ),
)


@dataclass
class Run:
    result: Result
    scenario: Scenario
    litellm_path: bool = False
    tokens_per_call: int = 0
    grant_to_arrival: list[float] = field(default_factory=list)  # seconds
    unmatched: int = 0
    spacing: str = ""  # how requests arrived at a strict-spacing provider

    @property
    def capacity(self) -> float:
        """The provider's capacity over the window, in its own unit (requests, or tokens with the first bucket)."""
        if self.scenario.tokens:
            return TPM / 60 * self.result.duration + TOKEN_BURST
        return LIMIT * self.result.duration

    @property
    def delivered(self) -> float:
        return self.result.successes * (self.tokens_per_call if self.scenario.tokens else 1)

    @property
    def share(self) -> float:
        return self.delivered / self.capacity if self.capacity else 0.0


# --- who is measured ---------------------------------------------------------------------------------------------

_CALL_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_pacing_user", default=None)
_GRANTS: dict[str, list[float]] = {}
_USERS = itertools.count()


def _next_user() -> str:
    user = f"u{next(_USERS)}"
    _CALL_USER.set(user)  # each caller is its own task: the value stays with this call
    return user


def _grant_observer() -> EventListener | None:
    user = _CALL_USER.get()
    if user is None:
        return None

    def heard(event: ResilienceEvent) -> None:
        if event.kind == "attempt":
            _GRANTS.setdefault(user, []).append(time.monotonic())

    return heard


def our_config(scenario: Scenario) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=ATTEMPTS - 1),
        rate_limiter=RateLimiterConfig(**scenario.limiter, max_wait=60.0),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5, cooldown_seconds=5),
        backpressure=BackpressureConfig(max_inflight=CALLERS, max_queue=None, max_wait=60.0),
    )


Factory = Callable[[list[Callable[[], None]]], AsyncCall]


def contenders(scenario: Scenario, base: str, quick: bool) -> list[tuple[str, bool, bool, Factory | str]]:
    """(name, ours, on the LiteLLM path, factory of the call — or why it is not available)."""
    out: list[tuple[str, bool, bool, Factory | str]] = []
    extra: dict[str, Any] = {"max_tokens": MAX_TOKENS} if scenario.tokens else {}
    missing = scenario.missing
    unavailable = (
        f"not available yet: RateLimiterConfig has no {', '.join(f'`{name}`' for name in missing)}" if missing else ""
    )
    limiter_text = ", ".join(f"{k}={v!r}" for k, v in scenario.limiter.items())

    model_cls = resilient_chat_model_cls()

    def make_model(cleanups: list[Callable[[], None]]) -> AsyncCall:
        model = model_cls(
            our_config(scenario),
            model=f"openai/{PRIMARY}",
            litellm_kwargs={"api_base": base, "api_key": "bench-key"},
            registry=Registry(),
            **extra,
        )
        return lambda: model.ainvoke("hi")

    out.append((f"**ours: ResilientChatModel, {limiter_text}**", True, False, unavailable or make_model))

    acompletion = resilient_acompletion_fn()

    def make_acompletion(cleanups: list[Callable[[], None]]) -> AsyncCall:
        config, registry = our_config(scenario), Registry()
        kwargs = litellm_kwargs(base, PRIMARY)
        del kwargs["max_retries"], kwargs["num_retries"]  # it forces both to 0 itself
        cleanups.append(observe_calls(_grant_observer))

        async def call() -> Any:
            return await acompletion(
                messages=MESSAGES, config=config, registry=registry, user=_next_user(), **kwargs, **extra
            )

        return call

    out.append((f"**ours: resilient_acompletion, {limiter_text}**", True, True, unavailable or make_acompletion))

    def make_callback(cleanups: list[Callable[[], None]]) -> AsyncCall:
        from langchain_ailib_resilience.integrations.litellm import ResilienceCallback

        litellm = quiet_litellm()
        callback = ResilienceCallback(our_config(scenario), registry=Registry()).register()
        cleanups.append(callback.unregister)
        cleanups.append(observe_calls(_grant_observer))
        params = litellm_kwargs(base, PRIMARY)
        params.pop("num_retries")
        router = litellm.Router(
            model_list=[{"model_name": "bench", "litellm_params": params}], num_retries=ATTEMPTS - 1
        )

        async def call() -> Any:
            return await router.acompletion(model="bench", messages=MESSAGES, user=_next_user(), **extra)

        return call

    callback_name = f"**ours: ResilienceCallback + Router(num_retries=3), {limiter_text}**"
    out.append((callback_name, True, True, unavailable or make_callback))

    request_equivalent = LIMIT
    if scenario.tokens:
        request_equivalent = TPM / 60 / (MAX_TOKENS + 2)  # the prompt ("user" + "hi") counts 2 tokens

    def make_router(cleanups: list[Callable[[], None]]) -> AsyncCall:
        litellm = quiet_litellm()
        params = litellm_kwargs(base, PRIMARY)
        params.pop("num_retries")
        strategy: dict[str, Any] = {}
        if scenario.configured:
            params.update({"tpm": TPM} if scenario.tokens else {"rpm": round(LIMIT * 60)})
            strategy = {"routing_strategy": "usage-based-routing-v2"}
        router = litellm.Router(
            model_list=[{"model_name": "bench", "litellm_params": params}], num_retries=ATTEMPTS - 1, **strategy
        )
        return lambda: router.acompletion(model="bench", messages=MESSAGES, **extra)

    limit_text = f"tpm={TPM}" if scenario.tokens else f"rpm={round(LIMIT * 60)}"
    router_name = (
        f"LiteLLM `Router({limit_text}, usage-based-routing-v2, num_retries=3)`"
        if scenario.configured
        else "LiteLLM `Router(num_retries=3)`, nothing configured"
    )
    out.append((router_name, False, False, make_router))

    def make_langchain(cleanups: list[Callable[[], None]]) -> AsyncCall:
        from langchain_core.rate_limiters import InMemoryRateLimiter

        limiter = (
            InMemoryRateLimiter(requests_per_second=request_equivalent, max_bucket_size=1)
            if scenario.configured
            else None
        )
        chain = chat_litellm(base, PRIMARY, rate_limiter=limiter, **extra).with_retry(stop_after_attempt=ATTEMPTS)
        return lambda: chain.ainvoke("hi")

    if scenario.configured:
        lc_name = f"LangChain `ChatLiteLLM(rate_limiter=InMemoryRateLimiter({request_equivalent:.3g}/s)).with_retry()`"
        if scenario.tokens:
            lc_name += " (no token limit: the equivalent request rate)"
    else:
        lc_name = "LangChain `ChatLiteLLM.with_retry()`, nothing configured"
    if not quick:
        out.append((lc_name, False, False, make_langchain))

    def make_plain(cleanups: list[Callable[[], None]]) -> AsyncCall:
        litellm = quiet_litellm()
        kwargs = {**litellm_kwargs(base, PRIMARY), "num_retries": ATTEMPTS - 1}
        return lambda: litellm.acompletion(messages=MESSAGES, **kwargs, **extra)

    if not quick:
        out.append(("plain `litellm.acompletion(num_retries=3)`", False, False, make_plain))
    return out


# --- running -----------------------------------------------------------------------------------------------------


def run(opts: Options, keys: tuple[str, ...] | None = None) -> Section:
    started = time.perf_counter()
    duration = 3.0 if opts.quick else opts.duration
    scenarios = [s for s in SCENARIOS if keys is None or s.key in keys]
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="langchain_ailib_resilience")
    emulator = RemoteEmulator().start()
    quiet_litellm()  # imports LiteLLM (seconds) while the emulator process starts
    runs: list[Run] = []
    with emulator as emu:
        base = emu.openai_base

        async def warm() -> None:
            await quiet_litellm().acompletion(messages=MESSAGES, **litellm_kwargs(base, PRIMARY))

        asyncio.run(warm())
        for scenario in scenarios:
            for name, ours, litellm_path, factory in contenders(scenario, base, opts.quick):
                result = Result(name, ours)
                item = Run(result, scenario, litellm_path)
                runs.append(item)
                if isinstance(factory, str):
                    result.pending = factory
                    continue
                _measure(emu, item, factory, duration, opts)
    return _section(runs, scenarios, opts, duration, time.perf_counter() - started)


def _measure(emu: RemoteEmulator, item: Run, factory: Factory, duration: float, opts: Options) -> None:
    result, scenario = item.result, item.scenario
    reset_registry()
    time.sleep(1.0)  # stragglers of the last run finish
    emu.call("rate_limit", PRIMARY, **scenario.provider)  # a fresh, full provider bucket
    cleanups: list[Callable[[], None]] = []

    async def one() -> None:
        call = factory(cleanups)
        await call()  # clients and caches built outside the window, as in a process that has been serving
        emu.call("rate_limit", PRIMARY, **scenario.provider)
        emu.call("clear_requests")
        _GRANTS.clear()
        await drive(call, duration, result, callers=CALLERS)

    try:
        asyncio.run(one())
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
    counts = emu.summary(PRIMARY)
    result.requests = sum(counts.values())
    result.rejected_429 = counts.get("429", 0)
    records = emu.call("records", PRIMARY)
    tokens = sorted(record[2] for record in records if record[1] == 200)
    item.tokens_per_call = tokens[len(tokens) // 2] if tokens else 0
    if item.litellm_path:
        _match_grants(item, records)
    if result.ours and scenario.provider.get("burst") == 1:
        item.spacing = _spacing([record[0] for record in records])
    if opts.verbose:
        print(f"  {scenario.key} {result.name}: {result.successes} ok, {result.failures} failed, {counts}")


def _spacing(arrivals: list[float]) -> str:
    """Quantiles of the gaps between consecutive arrivals, and the share that came early for a strict spacing."""
    ordered = sorted(arrivals)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    if not gaps:
        return ""
    spacing = 1 / LIMIT
    early = [gap for gap in gaps if gap < spacing - 1e-3]
    quantiles = "/".join(f"{percentile(gaps, q) * 1e3:.1f}" for q in (5, 25, 50, 95))
    short = f", those short by p50 {(spacing - percentile(early, 50)) * 1e3:.1f} ms" if early else ""
    under = f"{len(early) / len(gaps):.0%} under {spacing * 1e3 - 1:.0f} ms"
    return f"arrival gaps p5/p25/p50/p95 {quantiles} ms; {under}{short}"


def _match_grants(item: Run, records: list[list[Any]]) -> None:
    """Pair each call's grants with its requests' arrivals, in order (a retry is a second grant and request)."""
    arrivals: dict[str, list[float]] = {}
    for stamp, _status, _tokens, user in records:
        if isinstance(user, str):
            arrivals.setdefault(user, []).append(stamp)
    for user, grants in _GRANTS.items():
        came = sorted(arrivals.get(user, []))
        for granted, arrived in zip(sorted(grants), came, strict=False):
            item.grant_to_arrival.append(arrived - granted)
        item.unmatched += abs(len(grants) - len(came))


# --- reporting ---------------------------------------------------------------------------------------------------


def _section(runs: list[Run], scenarios: list[Scenario], opts: Options, duration: float, seconds: float) -> Section:
    method = (__doc__ or "").split("\n\n", 1)[1].split("Run alone")[0].strip()
    section = Section(
        "pacing",
        "6. Pacing: one good client of the provider's limits (issue 14)",
        method=method
        + f"\n\nThis run: {duration:g} s per contender, {CALLERS} callers, model id `openai/{PRIMARY}` against the "
        f"emulator, SDK retries off. Ours: retry {ATTEMPTS - 1}, breaker 5 failures / 5 s, in-flight {CALLERS}, "
        f"max_wait 60 s. Token scenario: every call sends `max_tokens={MAX_TOKENS}`; the emulator counts the prompt "
        "(1 token per 4 characters) plus `max_tokens` at arrival.",
        quick=opts.quick,
    )
    for scenario in scenarios:
        _table(section, [r for r in runs if r.scenario is scenario], scenario, duration)
    _grant_table(section, [r for r in runs if r.litellm_path and not r.result.pending])
    if duration < 30:
        section.notes.append(f"Short runs ({duration:g} s per contender) to spare a shared machine.")
    section.seconds = seconds
    return section


def _table(section: Section, runs: list[Run], scenario: Scenario, duration: float) -> None:
    unit = "tokens ÷ capacity" if scenario.tokens else "goodput ÷ limit"
    table = Table(
        [
            "client",
            unit,
            "successes/s",
            "tokens/s" if scenario.tokens else "429s",
            "429s ÷ requests",
            "requests sent",
            "failed calls",
            "p50 latency (s)",
            "p99 latency (s)",
            "client CPU per success (ms)",
        ],
        caption=f"**{scenario.key}: {scenario.title}, {CALLERS} callers, {duration:g} s**",
    )
    for item in runs:
        r = item.result
        if r.pending:
            table.add(r.name, r.pending, *(["–"] * 8))
            continue
        table.add(
            r.name,
            f"{item.share:.3f}",
            fmt(r.goodput, 1),
            fmt(item.delivered / r.duration, 0) if scenario.tokens else r.rejected_429,
            f"{r.share_429:.1%}",
            r.requests,
            r.failures,
            fmt(percentile(r.latencies, 50), 2),
            fmt(percentile(r.latencies, 99), 2),
            fmt(r.cpu / r.successes * 1e3, 1) if r.successes else "–",
        )
    section.tables.append(table)
    for item in runs:
        r = item.result
        if not r.ours:
            continue
        label = r.name.strip("*").removeprefix("ours: ").split(",")[0]
        what = "of the token capacity" if scenario.tokens else "of the provider's limit"
        goodput_text = f"{scenario.key}, {label}: goodput ≥ {scenario.bar_goodput:.2f} {what}"
        share_text = f"{scenario.key}, {label}: 429s ≤ {scenario.bar_429:.0%} of requests"
        if r.pending:
            section.targets.append(Target(goodput_text, "pending", r.pending))
            section.targets.append(Target(share_text, "pending", r.pending))
            continue
        section.targets.append(Target.check(goodput_text, item.share >= scenario.bar_goodput, f"{item.share:.3f}"))
        section.targets.append(
            Target.check(
                share_text, r.share_429 <= scenario.bar_429, f"{r.rejected_429} of {r.requests} = {r.share_429:.1%}"
            )
        )
    for item in runs:
        if item.spacing:
            section.notes.append(f"{scenario.key}, {item.result.name.strip('*').split(',')[0]}: {item.spacing}.")
    for item in runs:
        if item.result.errors:
            detail = ", ".join(f"{k} × {v}" for k, v in sorted(item.result.errors.items(), key=lambda kv: -kv[1]))
            section.notes.append(f"{scenario.key}, {item.result.name.strip('*')}: failed calls by exception: {detail}.")


def _grant_table(section: Section, runs: list[Run]) -> None:
    if not runs:
        return
    table = Table(
        ["scenario, path", "requests matched", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)", "≥ 1 ms", "≥ 5 ms"],
        caption="**Grant to send (item 4): our limiter's grant → the request's arrival at the emulator**",
    )
    for item in runs:
        values = [v * 1e3 for v in item.grant_to_arrival]
        if not values:
            table.add(f"{item.scenario.key}, {item.result.name.strip('*')}", "0", *(["–"] * 6))
            continue
        label = item.result.name.strip("*").removeprefix("ours: ").split(",")[0]
        table.add(
            f"{item.scenario.key}, {label}",
            f"{len(values)}" + (f" ({item.unmatched} unmatched)" if item.unmatched else ""),
            fmt(percentile(values, 50), 2),
            fmt(percentile(values, 90), 2),
            fmt(percentile(values, 99), 2),
            fmt(max(values), 1),
            f"{sum(v >= 1 for v in values) / len(values):.0%}",
            f"{sum(v >= 5 for v in values) / len(values):.0%}",
        )
    section.tables.append(table)
    section.notes.append(
        "Grant to send: unmatched counts are grants without an arrival (a call cancelled at the end of the window) "
        "or the reverse. The time includes the loopback hop and the emulator thread's wake-up, so it bounds from "
        "above the time LiteLLM spends between our grant and the bytes leaving."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--scenario", action="append", choices=[s.key for s in SCENARIOS], help="repeatable")
    ns = parser.parse_args()
    opts = Options(quick=ns.quick, duration=ns.duration, verbose=True)
    print(run(opts, tuple(ns.scenario) if ns.scenario else None).markdown())


if __name__ == "__main__":
    main()
