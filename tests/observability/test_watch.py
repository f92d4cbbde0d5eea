"""The live view: what it reads, what it serves, what it draws, and the ``watch`` command."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    FakeClock,
    RateLimiterConfig,
    ResilienceError,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    cli,
)
from langchain_ailib_resilience.observability import _watch, render, set_learned_limits_source, start_watch
from langchain_ailib_resilience.registry import Registry

CONFIG = ResilientConfig(
    retry=RetryConfig(max_retries=1, initial_delay=1, max_delay=2, jitter="none"),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=30),
    rate_limiter=RateLimiterConfig(requests_per_second=5, burst_size=5),
    backpressure=BackpressureConfig(max_inflight=4),
)


@pytest.fixture
def recorder() -> Iterator[_watch.WatchRecorder]:
    recorder = _watch.WatchRecorder().install()
    yield recorder
    recorder.uninstall()


async def outage(clock: FakeClock, registry: Registry) -> None:
    async def dead() -> str:
        raise ResilienceError("503", code="E3002")

    async def alive() -> str:
        return "ok"

    executor = ResilientExecutor(CONFIG, registry=registry, clock=clock)
    await executor.execute_chain([("watch/primary", dead), ("watch/backup", alive)])
    await executor.execute_chain([("watch/primary", dead), ("watch/backup", alive)])


def draw(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def test_the_snapshot_has_every_targets_state_and_the_recent_decisions(
    clock: FakeClock, recorder: _watch.WatchRecorder
) -> None:
    registry = Registry()
    await outage(clock, registry)
    data = recorder.snapshot()
    primary, backup = data["targets"]["watch/primary"], data["targets"]["watch/backup"]
    assert primary["circuit_state"] == "open" and backup["circuit_state"] == "closed"
    assert primary["max_inflight"] == 4 and primary["current_inflight"] == 0
    signals = registry.signals("watch/primary")
    assert signals is not None and primary["rate_remaining"] == pytest.approx(signals.rate_remaining)
    assert primary["rate_remaining"] < 5  # two requests took tokens
    assert primary["counts"] == {"retry": 1, "fallback": 2, "rejected": 1, "give_up": 1, "failure": 0}
    assert primary["learned_limits"] is None
    kinds = [(e["kind"], e["target"]) for e in data["recent"]]
    assert ("state_change", "watch/primary") in kinds and ("fallback", "watch/primary") in kinds
    change = next(e for e in data["recent"] if e["kind"] == "state_change")
    assert (change["from_state"], change["to_state"]) == ("closed", "open")

    text = draw(render(data))
    for expected in ("watch/primary", "open", "watch/backup", "closed", "0/4", "fallback", "closed → open"):
        assert expected in text


async def test_learned_limits_are_shown_when_a_source_reports_them(
    clock: FakeClock, recorder: _watch.WatchRecorder
) -> None:
    registry = Registry()
    await outage(clock, registry)
    set_learned_limits_source(lambda target: {"rpm": 600, "tpm": 90000} if target == "watch/primary" else None)
    try:
        data = recorder.snapshot()
    finally:
        set_learned_limits_source(None)
    assert data["targets"]["watch/primary"]["learned_limits"] == {"rpm": 600, "tpm": 90000}
    assert "rpm=600, tpm=90000" in draw(render(data))


async def test_an_adaptive_limiters_learned_rate_is_shown(clock: FakeClock, recorder: _watch.WatchRecorder) -> None:
    config = ResilientConfig(
        retry=RetryConfig(max_retries=1, initial_delay=0.1, max_delay=0.2, jitter="none"),
        rate_limiter=RateLimiterConfig(requests_per_second=10, burst_size=1, adaptive=True),
    )
    executor = ResilientExecutor(config, registry=Registry(), clock=clock)
    outcomes: list[BaseException | str] = [ResilienceError("429", code="E2001"), "ok"]

    async def storm() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    await executor.execute(storm, target="watch/adaptive")  # a 429 with no limit stated: AIMD lowers the rate
    row = recorder.snapshot()["targets"]["watch/adaptive"]
    assert row["rate_source"] == "429-feedback" and row["rate_limit"] < 10
    assert row["learned_limits"] == {"rps": round(row["rate_limit"], 2), "from": "429-feedback"}
    assert f"rps={round(row['rate_limit'], 2):g}, from=429-feedback" in draw(render(recorder.snapshot()))


def test_learned_limits_come_from_the_signals_and_a_configured_rate_is_not_learned() -> None:
    assert _watch.learned_limits({"rate_source": "configured", "rate_limit": 5.0}) is None
    assert _watch.learned_limits({"rate_source": "unlearned", "rate_limit": None}) is None
    assert _watch.learned_limits(
        {"rate_source": "headers", "rate_limit": 8.333, "spacing_margin": 0.02, "paused_for": 1.25}
    ) == {"rps": 8.33, "from": "headers", "margin": "2%", "paused": "1.2s"}


async def test_the_server_and_the_watch_command_show_another_processs_view(
    clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry()
    with start_watch() as server:
        await outage(clock, registry)
        assert server.url.startswith("http://127.0.0.1:")
        data = _watch.fetch_snapshot(server.url)
        assert data["targets"]["watch/primary"]["circuit_state"] == "open"
        assert cli.main(["watch", "--url", server.url, "--once"]) == 0
    out = capsys.readouterr().out
    assert "watch/primary" in out and "open" in out


def test_the_watch_command_says_when_it_cannot_read(capsys: pytest.CaptureFixture[str]) -> None:
    with start_watch() as server:
        url = server.url
    assert cli.main(["watch", "--url", url, "--once"]) == 1
    assert "cannot read" in capsys.readouterr().out
    assert cli.main(["watch", "--url", url, "--interval", "0"]) == 2


def test_an_empty_process_draws_a_hint() -> None:
    assert "no target has been called yet" in draw(render({"targets": {}, "recent": []}))
