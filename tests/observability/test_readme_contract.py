"""The README's Observability tables are what the code emits: span names, kinds and attributes; metric names,
instruments, units and attributes.

A scripted run on a fake clock (a 429 storm, an outage that opens a circuit and falls back, a rate-limit wait, a
failed call, a stream dropped mid-body) produces every span, span event and metric the README documents; the
attribute keys seen, per span and per metric, must be exactly the documented ones, in both directions.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from opentelemetry.trace import SpanKind
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
from langchain_ailib_resilience.registry import Registry

README = Path(__file__).resolve().parents[2] / "README.md"
PRIMARY = "openai/gpt-4o@http://127.0.0.1:8000/v1"
BACKUP = "anthropic/claude-3-5-haiku"
_TICKS = re.compile(r"`([^`]+)`")
_KEY = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")  # an attribute key; values (`chat`, `success`) have no dot
INSTRUMENTS = {"counter": Sum, "histogram": Histogram, "observable gauge": Gauge}


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Observability\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def table(header: str) -> list[list[str]]:
    """The rows of the section's table whose header row starts with ``| header |``."""
    lines = section().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def name(cell: str) -> str:
    return _TICKS.findall(cell)[0]


def keys(cell: str) -> set[str]:
    return {token for token in _TICKS.findall(cell) if _KEY.match(token)}


def config(**kwargs: object) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=2, initial_delay=1, max_delay=4, jitter="none"),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
        **kwargs,  # type: ignore[arg-type]
    )


def script(*outcomes: BaseException | str):  # type: ignore[no-untyped-def]
    pending = list(outcomes)

    async def attempt() -> str:
        outcome = pending.pop(0) if pending else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt


def error(code: str, retry_after: float | None = None) -> ResilienceError:
    return ResilienceError(f"provider says {code}", code=code, retry_after=retry_after)


async def scripted_run(clock: FakeClock) -> None:
    def executor(**kwargs: object) -> ResilientExecutor:
        return ResilientExecutor(config(**kwargs), registry=Registry(), clock=clock)

    # A 429 storm: a retry after the provider's Retry-After, then an answer.
    await executor().execute_chain([(PRIMARY, script(error("E2001", retry_after=2.0), "answer"))])
    # An outage: two 503s open the circuit, the third attempt is refused, the backup answers.
    primary = script(error("E3002"), error("E3002"), error("E3002"))
    await executor().execute_chain([(PRIMARY, primary), (BACKUP, script("from the backup"))])
    # A rate-limit wait: the second call waits ~1 s of virtual time for a token.
    limited = executor(rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1))
    for _ in range(2):
        await limited.execute(script("ok"), target=PRIMARY)
    # A failed call, and a stream that drops after its first chunk.
    with pytest.raises(ResilienceError):
        await executor().execute_chain([(PRIMARY, script(error("E1001")))])

    async def dropping(_ctx: object) -> AsyncIterator[str]:
        yield "one"
        raise error("E3001")

    with pytest.raises(ResilienceError):
        async for _ in executor().astream([Candidate(PRIMARY, dropping)]):
            pass


async def test_the_span_tables_are_what_the_code_emits(otel: OTel, clock: FakeClock) -> None:
    await scripted_run(clock)
    spans = otel.spans()
    documented = {name(row[0]): row for row in table("span")}
    assert set(documented) == {"resilience.call", "chat {gen_ai.request.model}"}

    for documented_name, (_, kind, parent, attributes) in documented.items():
        if documented_name.startswith("chat "):
            mine = [s for s in spans if s.name.startswith("chat ")]
            assert all(s.name == f"chat {s.attributes['gen_ai.request.model']}" for s in mine)
        else:
            mine = [s for s in spans if s.name == documented_name]
        assert mine, documented_name
        assert {s.kind for s in mine} == {getattr(SpanKind, name(kind))}
        seen = {key for s in mine for key in s.attributes}
        assert seen == keys(attributes), documented_name
        by_id = {s.context.span_id: s for s in spans}
        parents = {by_id[s.parent.span_id].name if s.parent is not None else "your current span" for s in mine}
        assert parents == {parent.strip("`")}, documented_name  # no current span in this test

    events = {name(row[0]): keys(row[1]) for row in table("span event")}
    seen_events: dict[str, set[str]] = {}
    for span in spans:
        for event in span.events:
            assert span.name == "resilience.call"
            seen_events.setdefault(event.name, set()).update(event.attributes)
    assert seen_events == events


async def test_the_metric_table_is_what_the_code_emits(otel: OTel, clock: FakeClock) -> None:
    await scripted_run(clock)
    data = otel.reader.get_metrics_data()
    assert data is not None
    emitted = {
        metric.name: (scope.scope.name, metric)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    rows = table("metric")
    assert {name(row[0]) for row in rows} == set(emitted)
    for cells in rows:
        metric_name, instrument, unit, attributes = name(cells[0]), cells[1], name(cells[2]), cells[3]
        scope, metric = emitted[metric_name]
        assert scope == "langchain_ailib_resilience"
        assert isinstance(metric.data, INSTRUMENTS[instrument]), metric_name
        if isinstance(metric.data, Sum):
            assert metric.data.is_monotonic
        assert metric.unit == unit, metric_name
        seen = {key for point in metric.data.data_points for key in (point.attributes or {})}
        assert seen == keys(attributes), metric_name
        if metric_name == "resilience.attempts":  # and the outcomes named beside the key are the emitted ones
            outcomes = {point.attributes["resilience.outcome"] for point in metric.data.data_points}
            assert outcomes == set(_TICKS.findall(attributes)) - keys(attributes) == {"success", "error", "rejected"}
