"""Adaptive limits: the rate learned from headers, from 429s (AIMD) and from early answers (spacing margin)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.errors.rate_headers import parse_rate_limit_headers
from langchain_ailib_resilience.feedback import reported_usage, response_headers
from langchain_ailib_resilience.policies import adaptive
from langchain_ailib_resilience.policies.adaptive import AdaptiveRate
from langchain_ailib_resilience.policies.rate_limiter import RateLimiter
from langchain_ailib_resilience.registry import Registry

OPENAI_20_PER_SECOND = {
    "x-ratelimit-limit-requests": "1200",
    "x-ratelimit-remaining-requests": "1199",
    "x-ratelimit-reset-requests": "50ms",
}


class LiteLLMAnswer:
    """The shape of a LiteLLM ``ModelResponse``: headers in ``_hidden_params``, usage in ``usage``."""

    def __init__(self, headers: dict[str, str], prompt: int = 10, completion: int = 5) -> None:
        self._hidden_params = {"additional_headers": headers}
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion}


def too_many(retry_after: float | None) -> ResilienceError:
    return ResilienceError("429", code="E2001", retry_after=retry_after, status_code=429)


def pacer(clock: FakeClock, *, ceiling: float | None = None, adaptive_on: bool = True) -> AdaptiveRate:
    limiter = RateLimiter(ceiling or adaptive.UNLEARNED_RATE, 1, clock=clock)
    return AdaptiveRate(limiter, clock, ceiling=ceiling, adaptive=adaptive_on, burst=1)


def test_litellm_and_langchain_answers_give_their_headers_and_usage() -> None:
    answer = LiteLLMAnswer({**OPENAI_20_PER_SECOND, "llm_provider-anthropic-ratelimit-requests-limit": "50"})
    headers = response_headers(answer)
    assert headers["x-ratelimit-limit-requests"] == "1200"
    assert headers["anthropic-ratelimit-requests-limit"] == "50"  # LiteLLM's llm_provider- prefix removed
    assert reported_usage(answer) == (10, 5)

    class Message:
        response_metadata = {"headers": OPENAI_20_PER_SECOND}  # ChatOpenAI(include_response_headers=True)
        usage_metadata = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}

    class Generation:
        message = Message()

    class ChatResult:
        generations = [Generation()]
        llm_output = None

    assert response_headers(ChatResult())["x-ratelimit-limit-requests"] == "1200"
    assert reported_usage(ChatResult()) == (7, 3)
    assert response_headers(object()) == {} and reported_usage(None) is None


async def test_adaptive_with_nothing_configured_learns_the_rate_from_openai_headers() -> None:
    clock = FakeClock()
    config = ResilientConfig(rate_limiter=RateLimiterConfig(adaptive=True))
    executor = ResilientExecutor(config, clock=clock, registry=Registry())

    async def call() -> LiteLLMAnswer:
        return LiteLLMAnswer(OPENAI_20_PER_SECOND)

    await executor.execute(call, target="openai/gpt-4o")
    signals = executor.signals_snapshot("openai/gpt-4o").targets["openai/gpt-4o"]
    assert signals.rate_limit == pytest.approx(20.0)
    assert signals.rate_source == "headers"
    started = clock.now()
    for _ in range(20):
        await executor.execute(call, target="openai/gpt-4o")
    assert clock.now() - started == pytest.approx(1.0, abs=0.06)  # paced at the learned 20/s, burst 1


async def test_the_configured_rate_is_the_ceiling_over_what_headers_state() -> None:
    clock = FakeClock()
    config = ResilientConfig(rate_limiter=RateLimiterConfig(adaptive=True, requests_per_second=10))
    executor = ResilientExecutor(config, clock=clock, registry=Registry())

    async def call() -> LiteLLMAnswer:
        return LiteLLMAnswer(OPENAI_20_PER_SECOND)

    await executor.execute(call, target="t")
    signals = executor.signals_snapshot("t").targets["t"]
    assert signals.rate_limit == pytest.approx(10.0) and signals.rate_source == "configured"


async def test_a_429s_headers_teach_the_limit_too() -> None:
    clock = FakeClock()
    config = ResilientConfig(
        retry=RetryConfig(max_retries=1, initial_delay=0.01, jitter="none"),
        rate_limiter=RateLimiterConfig(adaptive=True),
    )
    executor = ResilientExecutor(config, clock=clock, registry=Registry())

    class ProviderError(Exception):
        status_code = 429
        headers = {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "0", "retry-after": "1"}

    calls: list[float] = []

    async def call() -> str:
        calls.append(clock.now())
        if len(calls) == 1:
            raise ProviderError("rate limited")
        return "ok"

    assert await executor.execute(call, target="t") == "ok"
    signals = executor.signals_snapshot("t").targets["t"]
    assert signals.rate_limit == pytest.approx(10.0)
    assert calls[1] >= 1.0  # and the pause it asked for held


def test_aimd_cuts_once_per_wave_then_probes_back_up() -> None:
    clock = FakeClock()
    rate = pacer(clock, ceiling=20.0)
    for _ in range(20):  # sending at 20/s
        clock.advance(0.05)
        rate.succeeded()
    rate.rate_limited(None)
    cut = rate.limiter.rate
    assert cut == pytest.approx(20.0 * adaptive.DECREASE)
    assert rate.source == "429-feedback"
    rate.rate_limited(1.0)  # the same wave (within COOLDOWN): no second cut
    assert rate.limiter.rate == pytest.approx(cut)
    for _ in range(1000):
        rate.succeeded()
    assert rate.limiter.rate == pytest.approx(20.0)  # back at the ceiling, never above it
    assert rate.source == "configured"


def test_only_a_few_ms_early_429_at_a_known_limit_marks_the_provider_strict() -> None:
    clock = FakeClock()
    rate = pacer(clock)  # nothing known: a short Retry-After is over the limit
    rate.rate_limited(0.002)
    assert not rate.strict
    rate = pacer(clock, ceiling=20.0, adaptive_on=False)  # a configured limit
    rate.rate_limited(1.0)
    assert not rate.strict
    rate.rate_limited(0.002)
    assert rate.strict
    for _ in range(1000):
        rate.succeeded()
    assert rate.strict and rate.margin == 0.0  # a fact about the provider: it stays when the margin is gone


def test_an_early_429_widens_the_spacing_by_how_early_it_was_unless_it_was_a_stall() -> None:
    # 2 ms early at 20/s (50 ms apart) is 4 % of the spacing: it widened by 1 %, and 4-5 more early answers
    # came before the margin covered the jitter. Widened by the earliness now.
    rate = pacer(FakeClock(), ceiling=20.0, adaptive_on=False)
    rate.rate_limited(0.002)
    assert rate.margin == pytest.approx(0.002 * 20.0)
    # 22 ms early (a Router held one request 330 ms; the next ones bunched): a stall, not jitter. Widening by it
    # (capped at 5 % a 429) cost the callback path 4 % of its goodput; it widens by the least step.
    rate.rate_limited(0.022)
    assert rate.margin == pytest.approx(0.04 + adaptive.MARGIN_STEP)


def test_a_few_ms_early_widens_the_spacing_and_successes_narrow_it() -> None:
    clock = FakeClock()
    rate = pacer(clock, ceiling=20.0, adaptive_on=False)  # a configured limiter, not adaptive
    rate.rate_limited(0.0004)  # 0.4 ms early: the least step
    assert rate.margin == pytest.approx(adaptive.MARGIN_STEP)
    assert rate.limiter.rate == pytest.approx(20.0 / (1 + adaptive.MARGIN_STEP))
    for _ in range(int(adaptive.MARGIN_DECAY)):
        rate.succeeded()
    assert rate.margin == pytest.approx(0.0, abs=1e-12)
    rate.rate_limited(2.0)  # not adaptive: a long 429 pauses (elsewhere) but never cuts a configured rate
    assert rate.limiter.rate == pytest.approx(20.0)


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("ok"), st.floats(0.0, 2.0)),
        st.tuples(st.just("429"), st.one_of(st.none(), st.floats(0.0, 30.0))),
        st.tuples(st.just("limit"), st.floats(1.0, 100_000.0)),
    ),
    max_size=200,
)


def test_a_cut_after_a_burst_of_answers_stays_below_the_allowed_rate() -> None:
    # Two answers 1 ns apart measure ~1e9 req/s; with nothing configured or stated the cut must still start
    # from at most the rate allowed then (it was 8.5e8/s: in effect no limit after the 429).
    clock = FakeClock()
    rate = pacer(clock)
    rate.succeeded()
    clock.advance(1e-9)
    rate.succeeded()
    allowed = rate.limiter.rate
    rate.rate_limited(None)
    assert rate.limiter.rate <= allowed * adaptive.DECREASE * (1 + 1e-9)


def test_a_later_cut_starts_from_what_the_provider_lets_through_not_from_the_allowed_rate() -> None:
    # A slow start run up by a fast burst of answers (200/s) is cut to 180/s; the provider then answers 20/s.
    # The next waves must come down to 90 % of those 20/s (cutting the allowed rate by 10-15 % a second took
    # 19 s of 429s to come down), at most halving per cut.
    clock = FakeClock()
    rate = pacer(clock)
    for _ in range(adaptive.ANSWERS):
        clock.advance(0.005)
        rate.succeeded()
    rate.rate_limited(None)
    assert rate.limiter.rate > 100  # the first cut, from a burst of answers, says little
    cuts = []
    for _ in range(8):  # a wave a second; answers at the provider's 20/s in between
        for _ in range(20):
            clock.advance(0.05)
            rate.succeeded()
        before = rate.limiter.rate
        rate.rate_limited(None)
        cuts.append(rate.limiter.rate)
        assert rate.limiter.rate >= before / 2 * adaptive.DECREASE * 0.99  # at most halved (and DECREASE) a cut
    assert cuts[-1] == pytest.approx(20.0 * adaptive.DECREASE, rel=0.1)  # down to what the provider lets through


def test_with_nothing_known_a_short_retry_after_is_over_the_limit_not_early() -> None:
    # A 20/s bucket answers every excess request "retry in < 50 ms": with no configured or stated limit that
    # must cut the rate (it widened the margin to 25 % and never cut: 72 % of requests were 429s).
    clock = FakeClock()
    rate = pacer(clock)
    for _ in range(40):
        clock.advance(0.05)
        rate.succeeded()
    allowed = rate.limiter.rate
    rate.rate_limited(0.03)
    first = rate.limiter.rate
    assert rate.margin == 0.0 and first <= allowed * adaptive.DECREASE * 1.001  # a cut
    clock.advance(adaptive.COOLDOWN)
    rate.rate_limited(0.03)  # under the AIMD guess, too: a cut, not a margin
    assert rate.margin == 0.0 and rate.limiter.rate < first * adaptive.DECREASE * 1.001


def test_a_429_before_any_answer_does_not_cut_to_the_floor() -> None:
    # A 429 before any answer was measured. The cut must come from what was allowed (it came from FLOOR,
    # 1/min: 60 callers of a 20/s provider then crawled at 2 req/s).
    clock = FakeClock()
    rate = pacer(clock)
    rate.rate_limited(None)
    assert rate.limiter.rate == pytest.approx(adaptive.START_RATE * adaptive.DECREASE)


def test_an_adaptive_target_with_nothing_known_lets_one_caller_go_not_a_wave() -> None:
    # 60 callers of an unlearned target went at once (a 1000-token bucket): 55 of them met a 429 from a
    # 20/s burst-5 provider before the first answer could teach anything. Now one goes; the next at START_RATE.
    clock = FakeClock()
    state = Registry().get("t", ResilientConfig(rate_limiter=RateLimiterConfig(adaptive=True)), clock)
    assert state.limiter is not None and state.pacer is not None
    admitted = sum(state.limiter.try_acquire() for _ in range(60))
    assert admitted == 1
    assert state.signals().rate_source == "unlearned"
    assert state.limiter.wait_estimate() == pytest.approx(1 / adaptive.START_RATE)


def test_a_slow_start_doubles_per_answer_but_never_beyond_twice_what_is_answered() -> None:
    clock = FakeClock()
    rate = pacer(clock)
    rate.succeeded()  # one answer: nothing measured yet, the rate doubles
    assert rate.limiter.rate == pytest.approx(2 * adaptive.START_RATE)
    for _ in range(200):  # answers at 20/s: growth stops at twice that, whatever the provider's burst hides
        clock.advance(0.05)
        rate.succeeded()
        assert rate.limiter.rate <= adaptive.START_GAIN * 20.0 * (1 + 1e-6)
    assert rate.limiter.rate == pytest.approx(adaptive.START_GAIN * 20.0)
    assert rate.probing is not None and rate.source == "unlearned"


def test_the_cut_that_ends_a_slow_start_measures_the_recent_answers_not_the_ramp() -> None:
    # A slow start's answers come at 5, then 10, then the provider's 20/s. Measured over 2 s of answers the
    # ramp pulled the first cut down to 14/s (and it then crept up for seconds); over the last answers: 18/s.
    clock = FakeClock()
    rate = pacer(clock)
    for gap in [0.2] * 3 + [0.1] * 5 + [0.05] * 25:
        clock.advance(gap)
        rate.succeeded()
    rate.rate_limited(None)
    assert rate.limiter.rate == pytest.approx(20.0 * adaptive.DECREASE, rel=0.02)


def test_a_stated_limit_or_a_429_ends_the_slow_start() -> None:
    clock = FakeClock()
    rate = pacer(clock)
    parsed = parse_rate_limit_headers(OPENAI_20_PER_SECOND)
    assert parsed is not None
    rate.headers(parsed)
    assert rate.probing is None and rate.limiter.rate == pytest.approx(20.0)
    rate = pacer(clock)
    for _ in range(10):
        clock.advance(0.05)
        rate.succeeded()
    rate.rate_limited(None)
    assert rate.probing is None and rate.source == "429-feedback"
    cut = rate.limiter.rate
    for _ in range(10):
        rate.succeeded()
    assert rate.limiter.rate == pytest.approx(cut + 10 * adaptive.PROBE)  # additive probing, not doubling


def test_a_configured_rate_needs_no_slow_start() -> None:
    rate = pacer(FakeClock(), ceiling=20.0)
    assert rate.probing is None and rate.limiter.rate == pytest.approx(20.0)


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, ceiling=st.one_of(st.none(), st.floats(0.5, 500.0)), on=st.booleans())
def test_aimd_stays_within_its_bounds(events: list[tuple[str, Any]], ceiling: float | None, on: bool) -> None:
    clock = FakeClock()
    rate = pacer(clock, ceiling=ceiling, adaptive_on=on)
    for kind, value in events:
        if kind == "ok":
            clock.advance(value)
            rate.succeeded()
        elif kind == "429":
            rate.rate_limited(value)
        else:
            parsed = parse_rate_limit_headers({"x-ratelimit-limit-requests": repr(value)})
            assert parsed is not None
            rate.headers(parsed)
        assert 0.0 <= rate.margin <= adaptive.MAX_MARGIN
        assert rate.limiter.rate == pytest.approx(rate.effective)
        bounds = [b for b in (ceiling, rate.stated) if b is not None]
        top = min(bounds) if bounds else adaptive.UNLEARNED_RATE
        assert rate.limiter.rate <= top * (1 + 1e-9)
        if rate.probing is not None:  # a slow start runs only while nothing is known
            assert rate.aimd is None and rate.stated is None and ceiling is None
        assert rate.limiter.rate >= adaptive.FLOOR / (1 + adaptive.MAX_MARGIN) * (1 - 1e-9)
        if not on:  # only the margin moves a configured, non-adaptive rate
            assert rate.limiter.rate == pytest.approx(top / (1 + rate.margin))


def _status_error(status: int, headers: dict[str, str]) -> Exception:
    class ProviderError(Exception):
        pass

    error = ProviderError(f"HTTP {status}")
    error.status_code = status  # type: ignore[attr-defined]
    error.headers = headers  # type: ignore[attr-defined]
    return error


async def _failures_then_state(config: ResilientConfig, status: int, headers: dict[str, str], calls: int) -> str:
    executor = ResilientExecutor(config, clock=FakeClock(), registry=Registry())

    async def call() -> str:
        raise _status_error(status, headers)

    for _ in range(calls):
        with pytest.raises(ResilienceError) as caught:
            await executor.execute(call, target="t")
        assert not isinstance(caught.value, CircuitOpenError), "the circuit opened"
    return executor.signals_snapshot("t").targets["t"].circuit_state


BREAKER_AT_3 = CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=30)
NO_RETRY = RetryConfig(max_retries=0)


async def test_an_adaptive_limiters_429s_teach_it_and_never_open_the_circuit() -> None:
    """Callers at an unlearned rate get 429s from a healthy provider (a first wave, a probe too far): the pacer
    learns from them; counting them would open the circuit and reject every caller for the cooldown."""
    adaptive_on = RateLimiterConfig(adaptive=True)
    config = ResilientConfig(retry=NO_RETRY, circuit_breaker=BREAKER_AT_3, rate_limiter=adaptive_on)
    assert await _failures_then_state(config, 429, {"retry-after-ms": "40"}, 10) == "closed"
    assert await _failures_then_state(config, 429, {}, 10) == "closed"  # no headers: AIMD's input, not an outage
    executor = ResilientExecutor(config, clock=FakeClock(), registry=Registry())

    async def down() -> str:
        raise _status_error(503, {})

    for _ in range(3):
        with pytest.raises(ResilienceError):
            await executor.execute(down, target="t")
    assert executor.signals_snapshot("t").targets["t"].circuit_state == "open"


async def test_a_few_ms_early_429_is_timing_not_an_outage_but_a_real_429_storm_still_counts() -> None:
    config = ResilientConfig(
        retry=NO_RETRY,
        circuit_breaker=BREAKER_AT_3,
        rate_limiter=RateLimiterConfig(requests_per_second=20, burst_size=1),
    )
    assert await _failures_then_state(config, 429, {"retry-after-ms": "4"}, 10) == "closed"
    executor = ResilientExecutor(config, clock=FakeClock(), registry=Registry())

    async def storm() -> str:
        raise _status_error(429, {"retry-after": "1"})

    for _ in range(3):
        with pytest.raises(ResilienceError):
            await executor.execute(storm, target="t")
    assert executor.signals_snapshot("t").targets["t"].circuit_state == "open"
