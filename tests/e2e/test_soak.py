"""Soak: many concurrent callers through ``resilient_acompletion`` against a faulty, rate-limited emulator.

Parameters, and why: 1,000 requests from 100 concurrent asyncio callers (the issue's example is 2,000). What bounds
the run is LiteLLM's own CPU cost, about 15-30 ms a call on the 2-core test machine, so 2,000 calls (plus
retries) would take 60 s or more; 1,000 take about 25-30 s. Everything else keeps the issue's shape:

- the emulator fails 10 % of unscripted requests at random (seeded), drawing from 429 (Retry-After 0.05 s), 500,
  502, the overload signal, connection resets, quota and context-length errors; successes take 0.15 s;
- it enforces its own token bucket of 40 req/s per model, and our limiter is set to the same rate;
- three outages, at 15 %, 45 % and 75 % of the way, script 20 consecutive 503s on the primary so that its
  breaker opens, probes half-open and closes again, under load;
- our in-flight limit is 6 per target, well under the 100 callers, so it is the binding limit: with 0.15 s
  answers, 6 permits carry about 33 req/s, just under the rate limit and close to what the CPU allows.

Invariants asserted (no timings): in flight never above the limit (counted around every LiteLLM call, sampled
from our signals, and seen by the emulator); no request lost (every call returned an answer or raised, and every
attempt we sent reached the emulator exactly once); every failure a ``ResilienceError`` with a real
``StandardErrorCode``; the breaker never admitting more concurrent half-open probes than configured; and nothing
held at the end (no permit, no probe slot, no waiter, nothing in flight at the emulator).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import litellm
import pytest

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    RateLimiterConfig,
    ResilienceError,
    ResilienceEvent,
    ResilientConfig,
    RetryConfig,
    StandardErrorCode,
)
from langchain_ailib_resilience.clock import SYSTEM_CLOCK
from langchain_ailib_resilience.integrations.litellm import resilient_acompletion, target_key
from langchain_ailib_resilience.policies.circuit_breaker import BreakerPermit, CircuitBreaker
from langchain_ailib_resilience.registry import DEFAULT_REGISTRY
from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success

REQUESTS = 1_000
CALLERS = 100
FAULT_RATE = 0.10
SEED = 2024
RATE = 40.0  # req/s per model: the emulator's own limit, and ours
MAX_INFLIGHT = 6
HALF_OPEN_PROBES = 2
LATENCY = 0.15
OUTAGE = 20  # consecutive scripted 503s on the primary
OUTAGES_AT = frozenset({REQUESTS * 15 // 100, REQUESTS * 45 // 100, REQUESTS * 75 // 100})
PRIMARY, BACKUP = "soak-primary", "soak-backup"
TEXT = {PRIMARY: "Answer from the primary.", BACKUP: "Answer from the backup."}
MESSAGES = [{"role": "user", "content": "soak"}]

CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=3, initial_delay=0.01, max_delay=0.1, max_retry_after=1.0),
    rate_limiter=RateLimiterConfig(requests_per_second=RATE, burst_size=5),
    circuit_breaker=CircuitBreakerConfig(
        failure_threshold=3, cooldown_seconds=0.25, half_open_max_calls=HALF_OPEN_PROBES
    ),
    backpressure=BackpressureConfig(max_inflight=MAX_INFLIGHT),
    attempt_timeout=5.0,
    total_timeout=30.0,
)

# Failure codes the fault mix can produce once retries and the fallback have done what they can.
EXPECTED_FAILURES = frozenset(
    {
        StandardErrorCode.REQUEST_TOO_LARGE,  # context length: neither retried nor fallen back
        StandardErrorCode.RATE_LIMITED,
        StandardErrorCode.QUOTA_EXHAUSTED,
        StandardErrorCode.SERVER_ERROR,
        StandardErrorCode.OVERLOADED,
    }
)


class ProbeWatch:
    """Wraps one breaker's admit/settle methods to count half-open probes in flight, per breaker generation.

    A probe is in flight from its admission until its permit is settled (success, failure or release): that
    includes any wait for a rate token or an in-flight permit, so the count can only overstate.
    """

    def __init__(self, breaker: CircuitBreaker, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outstanding: dict[int, BreakerPermit] = {}
        self.admitted = 0
        self.peak_per_generation = 0
        self.peak_overall = 0
        admit = breaker.admit

        def watched_admit() -> BreakerPermit:
            permit = admit()
            if permit.probe:
                self.admitted += 1
                self.outstanding[id(permit)] = permit  # keeps the permit alive, so its id stays unique
                same = sum(1 for p in self.outstanding.values() if p.generation == permit.generation)
                self.peak_per_generation = max(self.peak_per_generation, same)
                self.peak_overall = max(self.peak_overall, len(self.outstanding))
            return permit

        def settles(method: Callable[..., None]) -> Callable[..., None]:
            def settle(permit: BreakerPermit, *args: Any) -> None:
                self.outstanding.pop(id(permit), None)
                method(permit, *args)

            return settle

        monkeypatch.setattr(breaker, "admit", watched_admit)
        for name in ("record_success", "record_failure", "release"):
            monkeypatch.setattr(breaker, name, settles(getattr(breaker, name)))


@pytest.mark.slow
async def test_soak_keeps_its_invariants(provider_emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = provider_emulator
    base = emulator.api_base("openai")
    for model in (PRIMARY, BACKUP):
        emulator.set_default(model, Success(TEXT[model], latency=LATENCY))
        emulator.rate_limit(model, RATE, burst=10)
    mix = [
        Fault.rate_limit(0.05),
        Fault.server_error(500),
        Fault.server_error(502),
        Fault.overloaded(),
        Fault.reset(),
        Fault.quota(),
        Fault.context_length(),
    ]
    emulator.set_fault_rate(FAULT_RATE, mix, seed=SEED)

    targets = {model: target_key(f"openai/{model}", api_base=base) for model in (PRIMARY, BACKUP)}
    states = {model: DEFAULT_REGISTRY.get(target, CONFIG, SYSTEM_CLOCK) for model, target in targets.items()}
    probes = {model: ProbeWatch(state.breaker, monkeypatch) for model, state in states.items()}

    # Every attempt goes through litellm.acompletion: count them, and how many are in flight at once.
    sent: Counter[str] = Counter()
    inflight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    sent_while_open: Counter[str] = Counter()
    acompletion = litellm.acompletion

    async def counted(**kwargs: Any) -> Any:
        model = kwargs["model"].split("/", 1)[1]
        sent[model] += 1
        inflight[model] += 1
        peak[model] = max(peak[model], inflight[model])
        if states[model].breaker.state.value == "open":
            sent_while_open[model] += 1  # admitted before the circuit opened, then queued for a token or permit
        try:
            return await acompletion(**kwargs)
        finally:
            inflight[model] -= 1

    monkeypatch.setattr(litellm, "acompletion", counted)

    events: Counter[str] = Counter()

    def on_event(event: ResilienceEvent) -> None:
        events[event.kind] += 1

    # Our own signals, sampled while the soak runs.
    signal_peak = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal signal_peak
        while not done.is_set():
            for state in states.values():
                signal_peak = max(signal_peak, state.signals().current_inflight)
            await asyncio.sleep(0.005)

    results: dict[int, Any] = {}
    numbers = iter(range(REQUESTS))

    async def caller() -> None:
        for number in numbers:
            if number in OUTAGES_AT:
                emulator.script(PRIMARY, [Fault.server_error(503)] * OUTAGE)
            try:
                results[number] = await resilient_acompletion(
                    model=f"openai/{PRIMARY}",
                    messages=MESSAGES,
                    api_base=base,
                    api_key="test-key",
                    fallbacks=[f"openai/{BACKUP}"],
                    config=CONFIG,
                    listeners=[on_event],
                )
            except Exception as exc:
                results[number] = exc

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    callers: Awaitable[Any] = asyncio.gather(*(caller() for _ in range(CALLERS)))
    await asyncio.wait_for(callers, timeout=110)
    seconds = time.monotonic() - started
    done.set()
    await sampler

    # No request lost: every call returned an answer or raised, and every attempt reached the emulator once.
    assert sorted(results) == list(range(REQUESTS))
    answers = Counter(r.choices[0].message.content for r in results.values() if not isinstance(r, BaseException))
    failures = [r for r in results.values() if isinstance(r, BaseException)]
    assert set(answers) <= set(TEXT.values()), answers
    assert sum(answers.values()) + len(failures) == REQUESTS
    assert await _eventually(lambda: emulator.in_flight() == 0, 3.0), f"{emulator.in_flight()} still in flight"
    assert {model: emulator.count(model) for model in TEXT} == {model: sent[model] for model in TEXT}

    # Every failure normalised, with a code the fault mix explains and the attempts that led to it.
    assert failures, "the fault mix includes context-length errors: some calls must fail"
    for failure in failures:
        assert isinstance(failure, ResilienceError), f"not normalised: {type(failure).__name__}: {failure}"
        assert isinstance(failure.code, StandardErrorCode)
        assert failure.code in EXPECTED_FAILURES, repr(failure)
        assert failure.attempts, repr(failure)

    # In flight never above the limit: around each call, in our signals, and at the emulator.
    assert max(peak.values()) <= MAX_INFLIGHT, peak
    assert peak[PRIMARY] == MAX_INFLIGHT, f"the in-flight limit was never reached: {peak}"
    assert signal_peak <= MAX_INFLIGHT
    for model, state in states.items():
        assert state.backpressure is not None and state.backpressure.peak_inflight <= MAX_INFLIGHT
        assert emulator.peak_in_flight(model) <= MAX_INFLIGHT, (model, emulator.peak_in_flight(model))

    # The breaker opened under load, probed half-open, and never had more probes out than configured.
    primary_breaker = states[PRIMARY].breaker
    assert primary_breaker.opened_total >= 1
    assert probes[PRIMARY].admitted >= 1
    for watch in probes.values():
        assert watch.peak_per_generation <= HALF_OPEN_PROBES
        assert not watch.outstanding, "a probe slot was never given back"

    # Nothing held at the end.
    for model, state in states.items():
        signals = state.signals()
        assert (signals.current_inflight, signals.inflight_waiting, signals.rate_waiting) == (0, 0, 0), model
        assert state.breaker.probes_in_flight == 0

    outcomes = Counter((r.model, r.outcome, r.source) for r in emulator.requests)
    print(
        f"\nsoak: {REQUESTS} calls from {CALLERS} callers in {seconds:.1f}s; answers {dict(answers)}; "
        f"failures {dict(Counter(f.code.value for f in failures))}; attempts {dict(sent)}; "
        f"peak in flight {dict(peak)} (emulator {[emulator.peak_in_flight(m) for m in TEXT]}); "
        f"breaker opened {primary_breaker.opened_total}x, probes admitted {probes[PRIMARY].admitted}, "
        f"peak probes per generation {probes[PRIMARY].peak_per_generation}, overall {probes[PRIMARY].peak_overall}; "
        f"sent while open {dict(sent_while_open)}; events {dict(events)}; "
        f"emulator bucket 429s {sum(n for (_, _, source), n in outcomes.items() if source == 'bucket')}"
    )


async def _eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
