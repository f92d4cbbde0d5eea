"""ResilientExecutor: retry, fallback, per-target breakers, deadlines, cancellation, streams, threads, loops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from langchain_ailib_resilience import (
    BackpressureConfig,
    Candidate,
    CircuitBreakerConfig,
    CircuitOpenError,
    DeadlineExceededError,
    FakeClock,
    FallbackChain,
    InvalidRequestError,
    OverloadedError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimiterConfig,
    ResilienceError,
    ResilienceEvent,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    StandardErrorCode,
    signals_snapshot,
)

FAST = RetryConfig(max_retries=3, initial_delay=1, max_delay=8, jitter="none")


def provider_error(code: str, retry_after: float | None = None) -> ResilienceError:
    return ResilienceError(f"provider says {code}", code=code, retry_after=retry_after)


class Script:
    """An async and sync callable that fails with the scripted errors, then answers."""

    def __init__(self, *outcomes: BaseException | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def _next(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def __call__(self) -> str:
        return self._next()

    def sync(self) -> str:
        return self._next()


def executor(clock: FakeClock, **config: object) -> ResilientExecutor:
    config.setdefault("retry", FAST)
    return ResilientExecutor(ResilientConfig(**config), clock=clock)  # type: ignore[arg-type]


async def test_success_passes_through(clock: FakeClock) -> None:
    ex = executor(clock)
    assert await ex.execute(Script("hello"), target="a") == "hello"
    assert clock.sleeps == []


async def test_retries_retryable_errors_with_backoff(clock: FakeClock) -> None:
    fn = Script(provider_error("E3002"), provider_error("E3001"), "ok")
    assert await executor(clock).execute(fn, target="a") == "ok"
    assert fn.calls == 3
    assert clock.sleeps == [1, 2]


async def test_honours_retry_after(clock: FakeClock) -> None:
    fn = Script(provider_error("E2001", retry_after=7.5), "ok")
    assert await executor(clock).execute(fn, target="a") == "ok"
    assert clock.sleeps == [7.5]


async def test_gives_up_after_max_retries_with_history(clock: FakeClock) -> None:
    fn = Script(*[provider_error("E3001") for _ in range(10)])
    with pytest.raises(ResilienceError) as info:
        await executor(clock).execute(fn, target="a")
    assert fn.calls == 4
    assert info.value.code is StandardErrorCode.SERVER_ERROR
    assert [a.attempt for a in info.value.attempts] == [1, 2, 3, 4]
    assert isinstance(info.value.__cause__, ResilienceError) or info.value.__cause__ is None


async def test_raw_exceptions_are_normalised_with_the_original_as_cause(clock: FakeClock) -> None:
    original = ConnectionRefusedError("connection refused")
    fn = Script(original, original, original, original)
    with pytest.raises(ResilienceError) as info:
        await executor(clock).execute(fn, target="a")
    assert info.value.code is StandardErrorCode.SERVER_ERROR
    assert info.value.__cause__ is original


async def test_non_retryable_error_stops_at_once(clock: FakeClock) -> None:
    fn = Script(provider_error("E1001"))
    backup = Script("backup")
    with pytest.raises(InvalidRequestError):
        await executor(clock).execute_chain([("a", fn), ("b", backup)])
    assert (fn.calls, backup.calls) == (1, 0)  # a bad request fails the same everywhere


async def test_quota_is_not_retried_but_falls_back(clock: FakeClock) -> None:
    primary = Script(provider_error("E2002"))
    backup = Script("backup")
    assert await executor(clock).execute_chain([("a", primary), ("b", backup)]) == "backup"
    assert primary.calls == 1
    assert clock.sleeps == []


async def test_overload_retries_then_falls_back(clock: FakeClock) -> None:
    primary = Script(*[provider_error("E3002") for _ in range(10)])
    backup = Script("backup")
    events: list[ResilienceEvent] = []
    ex = executor(clock)
    ex.add_listener(events.append)
    assert await ex.execute_chain([("a", primary), ("b", backup)]) == "backup"
    assert primary.calls == 4
    kinds = [e.kind for e in events]
    assert kinds.count("retry") == 3
    assert "fallback" in kinds
    fallback = next(e for e in events if e.kind == "fallback")
    assert fallback.detail["next_target"] == "b"


async def test_open_circuit_sends_calls_to_the_next_target_at_once(clock: FakeClock) -> None:
    config = {"retry": RetryConfig(max_retries=0), "circuit_breaker": CircuitBreakerConfig(failure_threshold=2)}
    ex = executor(clock, **config)
    dead = Script(*[provider_error("E3002") for _ in range(100)])
    healthy = Script(*["ok"] * 100)
    for _ in range(2):
        await ex.execute_chain([("dead", dead), ("healthy", healthy)])
    assert ex.state("dead").breaker.state == "open"
    for _ in range(20):
        assert await ex.execute_chain([("dead", dead), ("healthy", healthy)]) == "ok"
    assert dead.calls == 2  # the open circuit let nothing through
    assert ex.state("healthy").breaker.state == "closed"  # breakers are per target


async def test_all_targets_failing_raises_the_last_error_with_every_attempt(clock: FakeClock) -> None:
    ex = executor(clock, retry=RetryConfig(max_retries=1, initial_delay=1, max_delay=1))
    with pytest.raises(QuotaExhaustedError) as info:
        await ex.execute_chain(
            [("a", Script(provider_error("E3002"), provider_error("E3002"))), ("b", Script(provider_error("E2002")))]
        )
    assert [(a.target, a.code.value) for a in info.value.attempts] == [("a", "E3002"), ("a", "E3002"), ("b", "E2002")]
    assert "attempts:" in str(info.value)


async def test_long_retry_after_falls_back_instead_of_sleeping(clock: FakeClock) -> None:
    primary = Script(provider_error("E2001", retry_after=3600))
    backup = Script("backup")
    assert await executor(clock).execute_chain([("a", primary), ("b", backup)]) == "backup"
    assert clock.now() == 0


async def test_attempt_timeout_is_retryable_and_counts_against_the_provider(clock: FakeClock) -> None:
    calls = 0

    async def hangs_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await clock.asleep(100)
        return "ok"

    ex = executor(clock, attempt_timeout=5)
    assert await ex.execute(hangs_once, target="a") == "ok"
    assert calls == 2
    assert clock.now() == pytest.approx(5 + 1)
    assert ex.state("a").breaker.failure_count == 0  # the later success reset it


async def test_total_deadline_bounds_everything(clock: FakeClock) -> None:
    async def hangs() -> str:
        await clock.asleep(1000)
        return "late"

    ex = executor(clock, total_timeout=12, retry=RetryConfig(max_retries=5, initial_delay=4, max_delay=4))
    with pytest.raises(DeadlineExceededError):
        await ex.execute_chain([("a", hangs), ("b", hangs)])
    assert clock.now() == pytest.approx(12)


async def test_sleep_that_would_overrun_the_deadline_is_skipped(clock: FakeClock) -> None:
    fn = Script(provider_error("E3001", retry_after=20), "ok")
    ex = executor(clock, total_timeout=10)
    with pytest.raises(ResilienceError) as info:
        await ex.execute(fn, target="a")
    assert info.value.code is StandardErrorCode.SERVER_ERROR
    assert clock.now() == 0


async def test_timeout_error_from_the_call_is_a_provider_timeout(clock: FakeClock) -> None:
    fn = Script(TimeoutError("read timed out"), TimeoutError(), TimeoutError(), TimeoutError())
    with pytest.raises(ProviderTimeoutError):
        await executor(clock).execute(fn, target="a")
    assert fn.calls == 4


async def test_cancellation_is_never_retried_nor_counted(clock: FakeClock) -> None:
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await clock.asleep(100)
        return "x"

    ex = executor(clock, circuit_breaker=CircuitBreakerConfig(failure_threshold=1))
    clock.auto_advance = False
    task = asyncio.ensure_future(ex.execute(slow, target="a"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    state = ex.state("a")
    assert state.breaker.state == "closed"
    assert state.backpressure is not None and state.backpressure.inflight == 0


async def test_thousand_cancellations_mid_wait_leave_nothing_held(clock: FakeClock) -> None:
    config = {
        "rate_limiter": RateLimiterConfig(requests_per_second=1, burst_size=1, max_wait=None),
        "backpressure": BackpressureConfig(max_inflight=1, max_wait=None, max_queue=None),
    }
    ex = executor(clock, **config)
    clock.auto_advance = False
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "ok"

    first = asyncio.ensure_future(ex.execute(held, target="a"))
    await asyncio.sleep(0)
    tasks = [asyncio.ensure_future(ex.execute(held, target="a")) for _ in range(1000)]
    await asyncio.sleep(0)
    state = ex.state("a")
    assert state.limiter is not None and state.limiter.waiting == 1000
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    gate.set()
    assert await first == "ok"
    assert state.limiter.waiting == 0
    assert state.backpressure is not None and state.backpressure.inflight == 0
    clock.advance(1)
    assert state.limiter.remaining == pytest.approx(1)  # no token lost to the cancelled
    assert state.breaker.probes_in_flight == 0


async def test_local_rate_limit_past_its_bound_falls_back(clock: FakeClock) -> None:
    ex = executor(clock, rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1, max_wait=0.5))
    assert await ex.execute_chain([("a", Script("a1")), ("b", Script("b1"))]) == "a1"
    assert await ex.execute_chain([("a", Script("a2")), ("b", Script("b2"))]) == "b2"


def test_sync_path_retries_and_falls_back(clock: FakeClock) -> None:
    primary = Script(*[provider_error("E3002") for _ in range(10)])
    backup = Script(provider_error("E2001", retry_after=2), "backup")
    ex = executor(clock)
    assert ex.execute_chain_sync([("a", primary.sync), ("b", backup.sync)]) == "backup"
    assert clock.sleeps == [1, 2, 4, 2]


def test_sync_keyboard_interrupt_is_not_swallowed(clock: FakeClock) -> None:
    ex = executor(clock)
    with pytest.raises(KeyboardInterrupt):
        ex.execute_sync(Script(KeyboardInterrupt()).sync, target="a")
    assert ex.state("a").backpressure.inflight == 0  # type: ignore[union-attr]


# --- streams -------------------------------------------------------------------------------------------


def stream_source(plan: list[list[str] | BaseException]) -> tuple[list[int], object]:
    """Each call takes the next plan item: a list of chunks, an exception before the first chunk, or
    a list ending in an exception (fails mid-stream)."""
    calls = [0]

    async def make(_ctx: object) -> AsyncIterator[str]:
        item = plan[min(calls[0], len(plan) - 1)]
        calls[0] += 1
        if isinstance(item, BaseException):
            raise item
        for chunk in item:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    return calls, make


async def test_stream_retries_before_the_first_chunk(clock: FakeClock) -> None:
    calls, make = stream_source([provider_error("E3002"), ["a", "b", "c"]])
    ex = executor(clock)
    chunks = [c async for c in ex.astream([Candidate("a", make)])]  # type: ignore[arg-type]
    assert chunks == ["a", "b", "c"]
    assert calls[0] == 2


async def test_stream_falls_back_before_the_first_chunk(clock: FakeClock) -> None:
    _, dead = stream_source([provider_error("E2002")])
    _, healthy = stream_source([["x", "y"]])
    ex = executor(clock)
    chunks = [c async for c in ex.astream([Candidate("a", dead), Candidate("b", healthy)])]  # type: ignore[arg-type]
    assert chunks == ["x", "y"]


async def test_stream_error_after_first_chunk_surfaces_normalised_without_retry(clock: FakeClock) -> None:
    calls, make = stream_source([["a", "b", ConnectionResetError("reset")]])
    ex = executor(clock)
    seen: list[str] = []
    with pytest.raises(ResilienceError) as info:
        async for chunk in ex.astream([Candidate("a", make)]):  # type: ignore[arg-type]
            seen.append(chunk)
    assert seen == ["a", "b"]  # nothing repeated
    assert calls[0] == 1
    assert info.value.code is StandardErrorCode.SERVER_ERROR
    assert ex.state("a").backpressure.inflight == 0  # type: ignore[union-attr]


async def test_stream_permit_held_for_its_life_and_released_on_early_break(clock: FakeClock) -> None:
    _, make = stream_source([["a", "b", "c", "d"]])
    ex = executor(clock)
    stream = ex.astream([Candidate("a", make)])  # type: ignore[arg-type]
    assert await stream.__anext__() == "a"
    assert ex.state("a").backpressure.inflight == 1  # type: ignore[union-attr]
    await stream.aclose()
    assert ex.state("a").backpressure.inflight == 0  # type: ignore[union-attr]
    never = ex.astream([Candidate("a", make)])  # type: ignore[arg-type]
    del never  # never iterated: nothing was taken
    assert ex.state("a").backpressure.inflight == 0  # type: ignore[union-attr]


def test_sync_stream_retries_and_releases(clock: FakeClock) -> None:
    plan: list[object] = [provider_error("E3001"), ["p", "q", "r"]]

    def make(_ctx: object) -> Iterator[str]:
        item = plan.pop(0)
        if isinstance(item, BaseException):
            raise item
        yield from item  # type: ignore[misc]

    ex = executor(clock)
    stream = ex.stream([Candidate("a", make)])
    assert next(stream) == "p"
    stream.close()
    assert ex.state("a").backpressure.inflight == 0  # type: ignore[union-attr]


# --- sharing ------------------------------------------------------------------------------------------


async def test_state_is_shared_per_target_across_executors(clock: FakeClock) -> None:
    config = ResilientConfig(
        retry=RetryConfig(max_retries=0), circuit_breaker=CircuitBreakerConfig(failure_threshold=1)
    )
    one = ResilientExecutor(config, clock=clock)
    two = ResilientExecutor(config, clock=clock)
    with pytest.raises(OverloadedError):
        await one.execute(Script(provider_error("E3002")), target="openai/gpt-4o")
    with pytest.raises(CircuitOpenError):
        await two.execute(Script("never"), target="openai/gpt-4o")
    assert signals_snapshot("openai/gpt-4o").circuit_state == "open"
    with pytest.raises(KeyError, match="no resilience state"):
        signals_snapshot("unused/model")


def test_threads_and_event_loops_share_one_executor(clock: FakeClock) -> None:
    ex = executor(clock, backpressure=BackpressureConfig(max_inflight=3, max_wait=None, max_queue=None))
    peak = 0
    current = 0
    lock = threading.Lock()
    results: list[str] = []

    def body() -> str:
        nonlocal peak, current
        with lock:
            current += 1
            peak = max(peak, current)
        with lock:
            current -= 1
        return "ok"

    async def abody() -> str:
        return body()

    def sync_worker() -> None:
        for _ in range(50):
            results.append(ex.execute_sync(body, target="shared"))

    def loop_worker() -> None:
        async def main() -> None:
            out = await asyncio.gather(*(ex.execute(abody, target="shared") for _ in range(50)))
            results.extend(out)

        asyncio.run(main())

    threads = [threading.Thread(target=sync_worker) for _ in range(3)] + [
        threading.Thread(target=loop_worker) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 300
    assert peak <= 3
    assert ex.state("shared").backpressure.inflight == 0  # type: ignore[union-attr]


async def test_fallback_chain_with_ids_and_callables(clock: FakeClock) -> None:
    seen: list[str] = []

    async def call(model: str) -> str:
        seen.append(model)
        if model != "deepseek/deepseek-chat":
            raise provider_error("E3002")
        return f"answer from {model}"

    chain = FallbackChain(
        ["openai/gpt-4o", "anthropic/claude-3-5-sonnet", "deepseek/deepseek-chat"],
        config=ResilientConfig(retry=RetryConfig(max_retries=0)),
        clock=clock,
    )
    assert await chain.arun(call) == "answer from deepseek/deepseek-chat"
    assert seen == ["openai/gpt-4o", "anthropic/claude-3-5-sonnet", "deepseek/deepseek-chat"]
    assert chain.signals_snapshot().targets.keys() == set(chain.names)

    sync_chain = FallbackChain([Script(provider_error("E2002")).sync, Script("b").sync], clock=clock)
    assert sync_chain.run() == "b"


def test_fallback_chain_input_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FallbackChain([])
    with pytest.raises(TypeError, match="list of targets"):
        FallbackChain("openai/gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        FallbackChain(["a", "a"])
    with pytest.raises(TypeError, match="not callable"):
        FallbackChain(["a"]).run()


async def test_waiting_at_the_gate_is_reported(clock: FakeClock) -> None:
    ex = executor(clock, rate_limiter=RateLimiterConfig(requests_per_second=2, burst_size=1))
    events: list[ResilienceEvent] = []
    ex.add_listener(events.append)
    await ex.execute(Script("a"), target="t")
    await ex.execute(Script("b"), target="t")
    waits = [e for e in events if e.kind == "rate_limit_wait"]
    assert len(waits) == 1
    assert waits[0].delay == pytest.approx(0.5)


async def test_callers_queued_when_the_circuit_opens_are_stopped_before_sending(clock: FakeClock) -> None:
    """Ten callers wait for rate tokens; the first one's failure opens the circuit; the other nine must not send."""
    config = {
        "retry": RetryConfig(max_retries=0),
        "rate_limiter": RateLimiterConfig(requests_per_second=20, burst_size=1, max_wait=None),
        "circuit_breaker": CircuitBreakerConfig(failure_threshold=1, cooldown_seconds=30),
    }
    ex = executor(clock, **config)
    events: list[ResilienceEvent] = []
    ex.add_listener(events.append)
    sent = 0

    async def fail() -> str:
        nonlocal sent
        sent += 1
        await clock.asleep(0.01)
        raise provider_error("E3001")

    results = await asyncio.gather(*(ex.execute(fail, target="t") for _ in range(10)), return_exceptions=True)
    assert sent == 1
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 9
    assert ex.state("t").limiter.remaining == pytest.approx(1)  # type: ignore[union-attr]  # tokens given back
    assert ex.state("t").backpressure.inflight == 0  # type: ignore[union-attr]
    # One transition, one event (not one per waiting caller).
    assert [e.detail["to_state"] for e in events if e.kind == "state_change"] == ["open"]


def test_sync_callers_queued_when_the_circuit_opens_are_stopped_too(clock: FakeClock) -> None:
    ex = executor(
        clock,
        retry=RetryConfig(max_retries=0),
        backpressure=BackpressureConfig(max_inflight=1, max_wait=None),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=1, cooldown_seconds=30),
    )
    state = ex.state("t")
    assert state.backpressure is not None
    state.backpressure.acquire()  # someone holds the only permit
    outcome: list[BaseException | str] = []

    def queued_caller() -> None:
        try:
            outcome.append(ex.execute_sync(lambda: "sent", target="t"))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=queued_caller)
    thread.start()
    while state.backpressure.waiting == 0:
        pass
    state.breaker.record_failure(state.breaker.admit(), StandardErrorCode.OVERLOADED)  # the circuit opens
    state.backpressure.release()
    thread.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], CircuitOpenError)
    assert state.backpressure.inflight == 0


@pytest.mark.parametrize("listening", [False, True])
async def test_arguments_reach_every_attempt(clock: FakeClock, listening: bool) -> None:
    """``execute(fn, *args, **kwargs)``: the happy path calls ``fn`` itself and a core takes over on a failure;
    both pass the same arguments (with or without a listener, which decides whether the happy path is taken)."""
    seen: list[tuple[object, ...]] = []

    def record(*args: object, **kwargs: object) -> str:
        seen.append((*args, *sorted(kwargs.items())))
        if len(seen) % 2:
            raise ResilienceError("flaky", code="E3002")
        return "ok"

    async def arecord(*args: object, **kwargs: object) -> str:
        return record(*args, **kwargs)

    ex = executor(clock)
    if listening:
        ex.add_listener(lambda _event: None)
    assert ex.execute_sync(record, 1, 2, x=3, target="a") == "ok"
    assert await ex.execute(arecord, 1, 2, x=3, target="a") == "ok"
    assert ex.execute_sync(record, target="a") == "ok"
    assert await ex.execute(arecord, 4, target="a") == "ok"
    assert seen == [(1, 2, ("x", 3))] * 4 + [()] * 2 + [(4,)] * 2
