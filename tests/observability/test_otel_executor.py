"""OpenTelemetry through the bare executor (virtual time): spans, attributes and metrics per fault."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_helpers import OTel

from langchain_ailib_resilience import (
    Candidate,
    CircuitBreakerConfig,
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
from langchain_ailib_resilience.observability import _otel
from langchain_ailib_resilience.registry import Registry

PRIMARY = "openai/gpt-4o@http://127.0.0.1:8000/v1"
BACKUP = "anthropic/claude-3-5-haiku"
SECRET = "sk-test-SECRETKEY0123456789"


def config(**kwargs: object) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=2, initial_delay=1, max_delay=4, jitter="none"),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
        **kwargs,  # type: ignore[arg-type]
    )


def error(code: str, retry_after: float | None = None) -> ResilienceError:
    # A provider message quoting the key, as some SDKs do: it must not reach any span or metric.
    return ResilienceError(f"provider says {code}; api_key={SECRET}", code=code, retry_after=retry_after)


class Script:
    def __init__(self, *outcomes: BaseException | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def sync(self) -> str:
        return asyncio.run(self())


def executor(clock: FakeClock, **kwargs: object) -> ResilientExecutor:
    return ResilientExecutor(config(**kwargs), registry=Registry(), clock=clock)


def assert_no_secret(otel: OTel) -> None:
    for span in otel.spans():
        texts = [str(v) for v in span.attributes.values()]
        texts += [str(v) for event in span.events for v in event.attributes.values()]
        texts.append(span.status.description or "")
        assert not any("SECRETKEY" in text for text in texts), span.name
    data = otel.reader.get_metrics_data()
    assert data is not None
    assert "SECRETKEY" not in data.to_json()


async def test_a_429_storm_is_one_call_span_with_a_failed_and_a_good_attempt(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)
    primary = Script(error("E2001", retry_after=2.0), "answer")
    assert await ex.execute_chain([(PRIMARY, primary)]) == "answer"

    call = otel.spans("resilience.call")
    assert len(call) == 1 and call[0].status.status_code is not StatusCode.ERROR
    attempts = otel.chat_spans()
    assert [s.name for s in attempts] == ["chat gpt-4o", "chat gpt-4o"]
    assert all(s.parent is not None and s.parent.span_id == call[0].context.span_id for s in attempts)
    assert all(s.kind is SpanKind.CLIENT for s in attempts)
    first, second = attempts
    assert first.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "resilience.target": PRIMARY,
        "resilience.attempt": 1,
        "error.type": "rate_limited",
        "resilience.retry.delay": 2.0,
    }
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["resilience.attempt"] == 2 and "error.type" not in second.attributes
    assert otel.total("resilience.attempts", resilience__outcome="error", error__type="rate_limited") == 1
    assert otel.total("resilience.attempts", resilience__outcome="success", resilience__target=PRIMARY) == 1
    assert otel.total("resilience.retries", error__type="rate_limited", resilience__target=PRIMARY) == 1
    assert otel.total("resilience.fallbacks") == 0
    assert_no_secret(otel)


async def test_an_outage_opens_the_circuit_rejects_and_falls_back(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)
    primary = Script(error("E3002"), error("E3002"), error("E3002"))
    backup = Script("from the backup")
    assert await ex.execute_chain([(PRIMARY, primary), (BACKUP, backup)]) == "from the backup"
    assert primary.calls == 2  # the second failure opened the circuit; the third attempt was refused

    attempts = otel.chat_spans()
    assert [(s.attributes["resilience.target"], s.attributes.get("error.type")) for s in attempts] == [
        (PRIMARY, "overloaded"),
        (PRIMARY, "overloaded"),
        (BACKUP, None),
    ]
    assert attempts[2].attributes["gen_ai.provider.name"] == "anthropic"
    call = otel.spans("resilience.call")[0]
    assert [e.name for e in call.events] == ["resilience.rejected", "resilience.fallback"]
    assert call.events[0].attributes["resilience.rejection.reason"] == "circuit_open"
    assert call.events[1].attributes["resilience.fallback.target"] == BACKUP
    assert call.attributes["resilience.answered_by"] == BACKUP
    assert otel.total("resilience.attempts", resilience__outcome="error", resilience__target=PRIMARY) == 2
    assert otel.total("resilience.attempts", resilience__outcome="rejected", resilience__target=PRIMARY) == 1
    assert otel.total("resilience.attempts", resilience__outcome="success", resilience__target=BACKUP) == 1
    assert otel.total("resilience.retries", resilience__target=PRIMARY) == 2
    assert otel.total("resilience.rejections", resilience__rejection__reason="circuit_open") == 1
    assert otel.total("resilience.fallbacks", resilience__target=PRIMARY, error__type="overloaded") == 1
    assert otel.gauge("resilience.circuit.state", PRIMARY) == 2
    assert otel.gauge("resilience.circuit.state", BACKUP) == 0
    assert otel.gauge("resilience.inflight", PRIMARY) == 0
    assert_no_secret(otel)


async def test_a_spent_quota_falls_back_without_a_retry(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)
    assert await ex.execute_chain([(PRIMARY, Script(error("E2002"))), (BACKUP, Script("b"))]) == "b"
    assert [s.attributes.get("error.type") for s in otel.chat_spans()] == ["quota_exhausted", None]
    assert otel.total("resilience.retries") == 0
    assert otel.total("resilience.fallbacks", error__type="quota_exhausted") == 1
    assert_no_secret(otel)


async def test_a_failed_call_marks_its_call_span(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)
    with pytest.raises(ResilienceError):
        await ex.execute_chain([(PRIMARY, Script(error("E1001")))])
    call = otel.spans("resilience.call")[0]
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "invalid_request"
    assert "[REDACTED]" in (call.status.description or "")
    assert_no_secret(otel)


async def test_a_stream_dropped_mid_body_is_an_error_on_its_attempt(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)

    async def dropping(_ctx: object) -> AsyncIterator[str]:
        yield "one"
        yield "two"
        raise error("E3001")

    got: list[str] = []
    with pytest.raises(ResilienceError):
        async for chunk in ex.astream([Candidate(PRIMARY, dropping)]):
            got.append(chunk)
    assert got == ["one", "two"]
    (attempt,) = otel.chat_spans()
    assert attempt.attributes["error.type"] == "server_error"
    assert attempt.attributes["resilience.mid_stream"] is True
    call = otel.spans("resilience.call")[0]
    assert call.status.status_code is StatusCode.ERROR
    assert otel.total("resilience.attempts", resilience__outcome="error", error__type="server_error") == 1
    assert otel.total("resilience.retries") == 0


def test_a_sync_stream_closed_early_ends_its_spans(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)

    def chunks(_ctx: object) -> Iterator[str]:
        yield from ("a", "b", "c")

    stream = ex.stream([Candidate(PRIMARY, chunks)])
    assert next(stream) == "a"
    stream.close()
    assert len(otel.chat_spans()) == 1 and len(otel.spans("resilience.call")) == 1
    assert otel.gauge("resilience.inflight", PRIMARY) == 0


async def test_a_cancelled_call_ends_its_spans_as_cancelled(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock)
    started = asyncio.Event()

    async def hangs() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(ex.execute_chain([(PRIMARY, hangs)]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (attempt,) = otel.chat_spans()
    assert attempt.attributes["error.type"] == "cancelled"
    assert otel.spans("resilience.call")[0].attributes["error.type"] == "cancelled"


def test_sync_calls_and_rate_limit_waits_are_recorded(otel: OTel, clock: FakeClock) -> None:
    ex = executor(clock, rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1))
    assert ex.execute_sync(lambda: "one", target=PRIMARY) == "one"
    assert ex.execute_sync(lambda: "two", target=PRIMARY) == "two"  # waits ~1 s of virtual time for a token
    assert otel.total("resilience.attempts", resilience__outcome="success") == 2
    ((attrs, (count, total)),) = otel.points("resilience.rate_limit.wait")
    assert attrs == {"resilience.target": PRIMARY}
    assert count == 1 and total == pytest.approx(1.0, abs=0.05)


def test_nothing_is_recorded_or_built_until_an_sdk_is_configured(clock: FakeClock) -> None:
    from langchain_ailib_resilience import events

    instrumentation = _otel.OTelInstrumentation()  # the default: global providers, none set in this process
    assert not _otel._sdk_configured()
    assert instrumentation() is None
    _otel.instrument()
    assert events.call_listeners() == ()  # so an unobserved call builds no event at all


def test_endpoint_attributes_never_carry_credentials() -> None:
    attrs = _otel.endpoint_attributes("openai/gpt-4o@https://user:pw@gw.example:8443/v1?key=abc#dep-1", {})
    assert attrs["server.address"] == "gw.example" and attrs["server.port"] == 8443
    assert not any("pw" in str(v) or "abc" in str(v) for v in attrs.values())
    assert _otel.endpoint_attributes("gemini/gemini-2.0-flash", {})["gen_ai.provider.name"] == "gcp.gemini"
    assert _otel.endpoint_attributes("default", {"provider": "openai", "model": "gpt-4o"}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
    }


def test_the_api_still_keeps_its_global_providers_where_we_read_them() -> None:
    # OTelInstrumentation reads these module globals at the start of every call (get_tracer_provider() is slower).
    from opentelemetry import trace
    from opentelemetry.metrics import _internal as metrics_internal

    assert hasattr(trace, "_TRACER_PROVIDER") and hasattr(metrics_internal, "_METER_PROVIDER")


async def test_fallback_chain_entries_named_apart_from_their_model_carry_its_provider(
    otel: OTel, clock: FakeClock
) -> None:
    from langchain_ailib_resilience import FallbackChain

    chain = FallbackChain(
        [{"model": "openai/gpt-4o", "target": "primary"}, ("backup", "anthropic/claude-3-5-haiku")],
        config=config(),
        registry=Registry(),
        clock=clock,
    )

    async def call(target: object) -> str:
        if isinstance(target, dict):
            raise error("E3002")
        return "from the backup"

    assert await chain.arun(call) == "from the backup"
    spans = otel.chat_spans()
    assert [(s.name, s.attributes["resilience.target"]) for s in spans][-1] == ("chat claude-3-5-haiku", "backup")
    assert {s.attributes["gen_ai.provider.name"] for s in spans} == {"openai", "anthropic"}
    assert all(s.name == "chat gpt-4o" for s in spans if s.attributes["resilience.target"] == "primary")
