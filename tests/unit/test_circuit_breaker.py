"""Circuit breaker: thresholds, half-open probes, stale outcomes, events, failure-rate mode, manual control."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from langchain_ailib_resilience import CircuitBreaker, CircuitOpenError, FakeClock, FallbackableError
from langchain_ailib_resilience import StandardErrorCode as Code
from langchain_ailib_resilience.policies.circuit_breaker import BreakerPermit, CircuitState


def fail(breaker: CircuitBreaker, code: Code = Code.SERVER_ERROR) -> None:
    breaker.record_failure(breaker.admit(), code)


def test_state_is_a_str_enum_equal_to_the_seed_strings() -> None:
    breaker = CircuitBreaker(failure_threshold=5, cooldown_seconds=30)
    assert breaker.state == "closed"
    assert CircuitState.HALF_OPEN == "half_open"
    assert isinstance(breaker.state, str)


def test_opens_exactly_at_the_threshold_and_success_resets(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=10, clock=clock)
    fail(breaker)
    fail(breaker)
    breaker.record_success(breaker.admit())
    fail(breaker)
    fail(breaker)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"


@pytest.mark.parametrize(
    "code",
    [Code.INVALID_REQUEST, Code.REQUEST_TOO_LARGE, Code.AUTHENTICATION, Code.QUOTA_EXHAUSTED, Code.CANCELLED],
)
def test_caller_errors_never_count(clock: FakeClock, code: Code) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=10, clock=clock)
    for _ in range(10):
        fail(breaker, code)
    assert breaker.state == "closed"
    assert breaker.failure_count == 0


@pytest.mark.parametrize("code", [Code.RATE_LIMITED, Code.SERVER_ERROR, Code.OVERLOADED, Code.TIMEOUT])
def test_provider_failures_count(clock: FakeClock, code: Code) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=10, clock=clock)
    fail(breaker, code)
    fail(breaker, code)
    assert breaker.state == "open"


def test_open_rejects_with_the_cooldown_left_then_turns_half_open(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=30, clock=clock)
    fail(breaker)
    clock.advance(12)
    with pytest.raises(CircuitOpenError) as info:
        breaker.admit()
    assert info.value.retry_after == pytest.approx(18)
    assert isinstance(info.value, FallbackableError)
    assert info.value.local
    assert breaker.cooldown_remaining == pytest.approx(18)
    clock.advance(18)
    assert breaker.state == "half_open"  # derived from the clock when read


def test_half_open_admits_only_the_configured_probes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, half_open_max_calls=2, clock=clock)
    fail(breaker)
    clock.advance(5)
    probes = [breaker.admit(), breaker.admit()]
    assert all(p.probe for p in probes)
    with pytest.raises(CircuitOpenError, match="half-open"):
        breaker.admit()
    breaker.release(probes[0])  # a probe that ended without a verdict frees its slot
    probes[0] = breaker.admit()
    assert breaker.probes_in_flight == 2


def test_success_threshold_closes_and_failed_probe_reopens_with_growing_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1,
        cooldown_seconds=10,
        success_threshold=2,
        cooldown_multiplier=2.0,
        max_cooldown_seconds=25,
        clock=clock,
    )
    fail(breaker)
    clock.advance(10)
    breaker.record_failure(breaker.admit(), Code.OVERLOADED)
    assert breaker.state == "open"
    assert breaker.cooldown_remaining == pytest.approx(20)
    clock.advance(20)
    breaker.record_failure(breaker.admit(), Code.OVERLOADED)
    assert breaker.cooldown_remaining == pytest.approx(25)  # capped
    clock.advance(25)
    breaker.record_success(breaker.admit())
    assert breaker.state == "half_open"
    breaker.record_success(breaker.admit())
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.cooldown_remaining == pytest.approx(10)  # closing resets the growth


def test_outcomes_from_an_earlier_generation_are_ignored(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=10, clock=clock)
    slow = breaker.admit()  # admitted while closed
    fail(breaker)
    fail(breaker)
    clock.advance(10)
    probe = breaker.admit()
    breaker.record_success(slow)  # the old call's success must not close the circuit
    assert breaker.state == "half_open"
    breaker.record_failure(slow, Code.SERVER_ERROR)
    assert breaker.state == "half_open"
    breaker.record_success(probe)
    assert breaker.state == "closed"


def test_one_event_per_transition(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, clock=clock, name="t")
    seen: list[tuple[str, str, str]] = []
    breaker.add_listener(lambda name, old, new: seen.append((name, old.value, new.value)))
    fail(breaker)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            breaker.admit()
    clock.advance(5)
    _ = breaker.state
    _ = breaker.state
    breaker.record_success(breaker.admit())
    assert seen == [("t", "closed", "open"), ("t", "open", "half_open"), ("t", "half_open", "closed")]


def test_failure_rate_mode_needs_minimum_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        mode="failure_rate", failure_rate_threshold=0.5, minimum_calls=10, window_seconds=60, clock=clock
    )
    for _ in range(4):
        fail(breaker)
    assert breaker.state == "closed"  # 4/4 failed but below minimum throughput
    for _ in range(5):
        breaker.record_success(breaker.admit())
    fail(breaker)  # 5/10 = 50%
    assert breaker.state == "open"


def test_failure_rate_window_forgets_old_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        mode="failure_rate", failure_rate_threshold=0.5, minimum_calls=4, window_seconds=10, clock=clock
    )
    for _ in range(3):
        fail(breaker)
    clock.advance(11)
    for _ in range(3):
        breaker.record_success(breaker.admit())
    fail(breaker)
    assert breaker.window_counts() == (4, 1)
    assert breaker.state == "closed"


def test_force_open_and_reset(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=1, clock=clock)
    breaker.force_open()
    clock.advance(1000)
    assert breaker.state == "open"  # forced: no half-open probing
    with pytest.raises(CircuitOpenError, match="forced"):
        breaker.admit()
    breaker.reset()
    assert breaker.state == "closed"
    breaker.admit()


def test_bad_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown_seconds"):
        CircuitBreaker(cooldown_seconds=float("nan"))


def test_call_wrappers_classify_errors(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, clock=clock)

    def bad_request() -> None:
        raise ValueError("not a provider failure")

    with pytest.raises(ValueError):
        breaker.call(bad_request)
    assert breaker.state == "closed"

    def overloaded() -> None:
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(ConnectionResetError):
        breaker.call(overloaded)
    assert breaker.state == "open"


async def test_half_open_with_twenty_concurrent_callers_lets_one_probe_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    reached = 0
    gate = asyncio.Event()

    async def call() -> str:
        nonlocal reached
        reached += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.ensure_future(breaker.acall(call)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert reached == 1
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 19
    assert breaker.state == "closed"


def test_threads_never_exceed_probe_limit(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, half_open_max_calls=3, clock=clock)
    fail(breaker)
    clock.advance(5)
    admitted: list[BreakerPermit] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        try:
            permit = breaker.admit()
        except CircuitOpenError:
            return
        with lock:
            admitted.append(permit)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 3


class BreakerMachine(RuleBasedStateMachine):
    """Random admissions, outcomes and time steps never break the breaker's invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breaker = CircuitBreaker(
            failure_threshold=3, cooldown_seconds=10, half_open_max_calls=2, success_threshold=2, clock=self.clock
        )
        self.held: list[BreakerPermit] = []
        self.reached_while_open = 0

    @rule()
    def admit(self) -> None:
        state = self.breaker.state
        try:
            permit = self.breaker.admit()
        except CircuitOpenError:
            assert state != "closed"
            return
        if state == "open":
            self.reached_while_open += 1
        self.held.append(permit)

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0), outcome=st.sampled_from(["ok", "fail", "neutral", "caller"]))
    def settle(self, index: int, outcome: str) -> None:
        permit = self.held.pop(index % len(self.held))
        if outcome == "ok":
            self.breaker.record_success(permit)
        elif outcome == "fail":
            self.breaker.record_failure(permit, Code.OVERLOADED)
        elif outcome == "caller":
            self.breaker.record_failure(permit, Code.INVALID_REQUEST)
        else:
            self.breaker.release(permit)

    @rule(seconds=st.floats(min_value=0, max_value=15))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def probes_bounded(self) -> None:
        assert 0 <= self.breaker.probes_in_flight <= 2
        held_probes = sum(p.probe and p.generation == self.breaker.generation for p in self.held)
        assert self.breaker.probes_in_flight <= held_probes

    @invariant()
    def open_admits_nobody(self) -> None:
        assert self.reached_while_open == 0


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
