"""ResilienceCallback under litellm.Router: deployments with open circuits are filtered out, and a rejection by
the gate sends the Router to its fallback at once instead of being retried as a transient failure."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import litellm
import pytest
from litellm_fixture_server import MESSAGES, FixtureServer, ok, unavailable

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    RateLimiterConfig,
    ResilienceCallback,
    ResilientConfig,
)
from langchain_ailib_resilience.integrations.litellm import held_calls, target_key
from langchain_ailib_resilience.testing import Fault, ProviderEmulator


def deployment(server: FixtureServer, group: str, model: str, deployment_id: str, **extra: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": server.api_base, "api_key": "test", "max_retries": 0, **extra}
    return {"model_name": group, "litellm_params": params, "model_info": {"id": deployment_id}}


def callback(threshold: int = 1) -> ResilienceCallback:
    config = ResilientConfig(circuit_breaker=CircuitBreakerConfig(failure_threshold=threshold, cooldown_seconds=60))
    return ResilienceCallback(config).register()


async def test_filter_keeps_traffic_off_an_open_deployment(server: FixtureServer) -> None:
    gate = callback(threshold=1)
    server.default("rt-bad", unavailable())
    server.default("rt-good", ok("sibling"))
    router = litellm.Router(
        model_list=[
            deployment(server, "rt-group", "rt-bad", "dep-bad", order=1),  # tried first while healthy
            deployment(server, "rt-group", "rt-good", "dep-good", order=2),
        ],
        num_retries=2,
    )
    first = await router.acompletion(model="rt-group", messages=MESSAGES)
    assert first.choices[0].message.content == "sibling"
    assert server.count("rt-bad") == 1
    bad = target_key("openai/rt-bad", api_base=server.api_base, deployment_id="dep-bad")
    assert gate.signals_snapshot(model=bad).circuit_state == "open"
    for _ in range(4):
        response = await router.acompletion(model="rt-group", messages=MESSAGES)
        assert response.choices[0].message.content == "sibling"
    assert server.count("rt-bad") == 1  # filtered out: the open deployment saw nothing more
    assert gate.signals_snapshot(model=bad).targets[bad].rejected_total == 0  # not even a rejection
    group = gate.signals_snapshot(model="rt-group")
    assert set(group.targets) == {bad, target_key("openai/rt-good", api_base=server.api_base, deployment_id="dep-good")}
    assert held_calls() == 0


async def test_gate_rejection_goes_to_the_fallback_at_once(server: FixtureServer) -> None:
    gate = callback(threshold=1)
    server.default("rt-solo", unavailable())
    server.default("rt-backup", ok("fallback"))
    router = litellm.Router(
        model_list=[
            deployment(server, "rt-solo-group", "rt-solo", "dep-solo"),
            deployment(server, "rt-backup-group", "rt-backup", "dep-backup"),
        ],
        fallbacks=[{"rt-solo-group": ["rt-backup-group"]}],
        num_retries=3,
    )
    started = time.monotonic()
    response = await router.acompletion(model="rt-solo-group", messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert response.choices[0].message.content == "fallback"
    # The failure opened the circuit of the group's only deployment: the Router skipped its retries (which
    # would only have met the gate, after a backoff sleep each) and went to the fallback group.
    assert server.count("rt-solo") == 1
    solo = target_key("openai/rt-solo", api_base=server.api_base, deployment_id="dep-solo")
    assert gate.signals_snapshot(model=solo).targets[solo].rejected_total == 0
    assert elapsed < 2.0, "the Router slept before falling back"
    started_again = time.monotonic()
    for _ in range(3):
        response = await router.acompletion(model="rt-solo-group", messages=MESSAGES)
        assert response.choices[0].message.content == "fallback"
    assert server.count("rt-solo") == 1
    assert gate.signals_snapshot(model=solo).targets[solo].rejected_total == 3  # once per call, never retried
    assert time.monotonic() - started_again < 2.0, "the Router slept before falling back"


async def test_gate_rejection_without_fallback_reaches_the_caller(server: FixtureServer) -> None:
    callback(threshold=1)
    server.default("rt-alone", unavailable())
    router = litellm.Router(model_list=[deployment(server, "rt-alone-group", "rt-alone", "dep-alone")], num_retries=3)
    with pytest.raises(litellm.ServiceUnavailableError):
        await router.acompletion(model="rt-alone-group", messages=MESSAGES)
    started = time.monotonic()
    with pytest.raises(CircuitOpenError) as caught:
        await router.acompletion(model="rt-alone-group", messages=MESSAGES)
    assert time.monotonic() - started < 2.0
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert server.count("rt-alone") == 1


async def test_open_deployment_is_skipped_while_a_healthy_sibling_serves() -> None:
    """Two deployments of one group at the emulator, one dead: once its circuit opens, every request is served
    by the sibling (simple-shuffle picks either), the dead one sees no request, and no caller gets a 503."""
    callback(threshold=3)
    with ProviderEmulator() as emulator:
        emulator.set_default("pair-dead", Fault.server_error(500))
        model_list = [
            {
                "model_name": "pair",
                "litellm_params": {
                    "model": f"openai/{name}",
                    "api_base": emulator.openai_base,
                    "api_key": "sk-emulator",
                    "max_retries": 0,
                },
                "model_info": {"id": name},
            }
            for name in ("pair-dead", "pair-live")
        ]
        router = litellm.Router(model_list=model_list, num_retries=1, disable_cooldowns=True)
        dead = target_key("openai/pair-dead", api_base=emulator.openai_base, deployment_id="pair-dead")
        gate = next(cb for cb in litellm.callbacks if isinstance(cb, ResilienceCallback))
        for _ in range(40):  # until the breaker has seen its threshold
            if emulator.count("pair-dead") == 3:
                break
            with contextlib.suppress(litellm.InternalServerError):  # before it opens, a retry may meet it too
                await router.acompletion(model="pair", messages=MESSAGES)
        assert gate.signals_snapshot(model=dead).circuit_state == "open"
        assert emulator.count("pair-dead") == 3
        served = emulator.count("pair-live")
        for _ in range(20):
            response = await router.acompletion(model="pair", messages=MESSAGES)
            assert response.choices[0].message.content
        assert emulator.count("pair-dead") == 3
        assert emulator.count("pair-live") == served + 20
        assert gate.signals_snapshot(model=dead).targets[dead].rejected_total == 0
    assert held_calls() == 0


async def test_a_router_answer_teaches_the_deployment_its_stated_limits_and_usage() -> None:
    """The Router settles a non-stream answer in its deployment success hook: that answer's headers and usage
    must reach the target (it was settled with no answer, so an adaptive limiter behind a Router never learned
    from a success and its first wave of callers went out unlimited)."""
    config = ResilientConfig(rate_limiter=RateLimiterConfig(adaptive=True, tokens_per_minute=600_000))
    gate = ResilienceCallback(config).register()
    with ProviderEmulator() as emulator:
        emulator.rate_limit("rt-adaptive", 20, burst=5)  # OpenAI x-ratelimit-* headers on every answer
        params = {"model": "openai/rt-adaptive", "api_base": emulator.openai_base, "api_key": "sk-emulator"}
        router = litellm.Router(
            model_list=[{"model_name": "g", "litellm_params": {**params, "max_retries": 0}, "model_info": {"id": "a"}}]
        )
        await router.acompletion(model="g", messages=MESSAGES)
        name = target_key("openai/rt-adaptive", api_base=emulator.openai_base, deployment_id="a")
        signals = gate.signals_snapshot(model=name).targets[name]
        assert signals.rate_source == "headers" and signals.rate_limit == pytest.approx(20.0)
    assert held_calls() == 0
