"""ResilienceCallback against a real OpenAI-compatible HTTP server on 127.0.0.1 and with ``mock_response``."""

from __future__ import annotations

import asyncio
import gc
import warnings

import litellm
import pytest
from litellm_fixture_server import MESSAGES, FixtureServer, aeventually, eventually, ok, rate_limited, sse, unavailable

from langchain_ailib_resilience import (
    BackpressureConfig,
    BackpressureError,
    CircuitBreakerConfig,
    CircuitOpenError,
    ConfigError,
    FakeClock,
    RateLimiterConfig,
    RateLimitExceededError,
    Registry,
    ResilienceCallback,
    ResilientConfig,
    signals_snapshot,
)
from langchain_ailib_resilience.integrations.litellm import held_calls, target_key


def breaker(threshold: int = 2, cooldown: float = 30.0, probes: int = 1) -> ResilientConfig:
    return ResilientConfig(
        circuit_breaker=CircuitBreakerConfig(
            failure_threshold=threshold, cooldown_seconds=cooldown, half_open_max_calls=probes
        )
    )


def call_kwargs(server: FixtureServer, model: str) -> dict[str, object]:
    return {
        "model": f"openai/{model}",
        "messages": MESSAGES,
        "api_base": server.api_base,
        "api_key": "test",
        "max_retries": 0,
    }


def inflight(callback: ResilienceCallback, model: str) -> int:
    try:
        return callback.signals_snapshot(model=model).current_inflight
    except KeyError:
        return -1


def rate_limit_error() -> litellm.RateLimitError:
    return litellm.RateLimitError("slow down", llm_provider="openai", model="m")


# --- the gate -----------------------------------------------------------------------------------------------


async def test_open_circuit_stops_requests_until_the_cooldown(server: FixtureServer, clock: FakeClock) -> None:
    callback = ResilienceCallback(breaker(threshold=2, cooldown=30), clock=clock).register()
    server.default("cb-open", unavailable())
    kwargs = call_kwargs(server, "cb-open")
    for _ in range(2):
        with pytest.raises(litellm.ServiceUnavailableError):
            await litellm.acompletion(**kwargs)
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as caught:
            await litellm.acompletion(**kwargs)
        assert caught.value.retry_after == pytest.approx(30.0)
    assert server.count("cb-open") == 2  # nothing reached the provider while open
    snapshot = callback.signals_snapshot(model="openai/cb-open")
    assert (snapshot.circuit_state, snapshot.current_inflight, snapshot.consecutive_failures) == ("open", 0, 2)

    clock.advance(30)
    server.default("cb-open", ok("back"))
    response = await litellm.acompletion(**kwargs)
    assert response.choices[0].message.content == "back"
    assert server.count("cb-open") == 3
    assert callback.signals_snapshot(model="openai/cb-open").circuit_state == "closed"
    assert held_calls() == 0


async def test_half_open_admits_the_configured_number_of_probes(server: FixtureServer, clock: FakeClock) -> None:
    callback = ResilienceCallback(breaker(threshold=1, cooldown=10, probes=2), clock=clock).register()
    kwargs = call_kwargs(server, "cb-probe")
    server.script("cb-probe", unavailable())
    with pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(**kwargs)
    clock.advance(10)
    server.default("cb-probe", ok("probe", delay=0.3))
    results = await asyncio.gather(*(litellm.acompletion(**kwargs) for _ in range(3)), return_exceptions=True)
    rejected = [r for r in results if isinstance(r, CircuitOpenError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert (len(answered), len(rejected)) == (2, 1)
    assert server.count("cb-probe") == 3  # the failure, then exactly two probes
    assert callback.signals_snapshot(model="openai/cb-probe").circuit_state == "closed"


async def test_full_inflight_limit_rejects_before_sending(server: FixtureServer) -> None:
    config = ResilientConfig(backpressure=BackpressureConfig(max_inflight=1, max_wait=0))
    callback = ResilienceCallback(config).register()
    server.default("cb-busy", ok("slow", delay=0.3))
    kwargs = call_kwargs(server, "cb-busy")
    first = asyncio.ensure_future(litellm.acompletion(**kwargs))
    assert await aeventually(lambda: inflight(callback, "openai/cb-busy") == 1)
    with pytest.raises(BackpressureError):
        await litellm.acompletion(**kwargs)
    await first
    assert server.count("cb-busy") == 1
    assert callback.signals_snapshot(model="openai/cb-busy").current_inflight == 0


async def test_rate_wait_past_its_bound_rejects(clock: FakeClock) -> None:
    config = ResilientConfig(rate_limiter=RateLimiterConfig(requests_per_second=1, burst_size=1, max_wait=0.5))
    ResilienceCallback(config, clock=clock).register()
    await litellm.acompletion(model="openai/cb-rate", messages=MESSAGES, mock_response="one")
    with pytest.raises(RateLimitExceededError) as caught:
        await litellm.acompletion(model="openai/cb-rate", messages=MESSAGES, mock_response="two")
    assert caught.value.retry_after == pytest.approx(1.0)
    clock.advance(1)
    await litellm.acompletion(model="openai/cb-rate", messages=MESSAGES, mock_response="three")


async def test_sdk_retries_are_turned_off_for_gated_calls(server: FixtureServer) -> None:
    ResilienceCallback(breaker(threshold=5)).register()
    server.default("cb-sdk", unavailable())
    with pytest.warns(UserWarning, match="num_retries"), pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(**call_kwargs(server, "cb-sdk"), num_retries=2)
    assert server.count("cb-sdk") == 1  # LiteLLM's hidden retries would have resent it, ungated


async def test_the_openai_clients_hidden_retries_are_turned_off_unless_asked_for(server: FixtureServer) -> None:
    """Without max_retries the OpenAI client inside LiteLLM resends a 503 twice, unseen: one gated call would
    reach the provider three times and count as one failure."""
    ResilienceCallback(breaker(threshold=5)).register()
    server.default("cb-client", unavailable())
    kwargs = {k: v for k, v in call_kwargs(server, "cb-client").items() if k != "max_retries"}
    with pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(**kwargs)
    assert server.count("cb-client") == 1
    with pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(**kwargs, max_retries=1)  # an explicit choice is respected
    assert server.count("cb-client") == 3


async def test_refusing_a_call_with_sdk_retries_warns(server: FixtureServer) -> None:
    ResilienceCallback(breaker(threshold=1)).register()
    server.default("cb-sdk-open", unavailable())
    with pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(**call_kwargs(server, "cb-sdk-open"))
    # A known LiteLLM limit: the SDK wrapper resends a refused call num_retries times without running any hook.
    with pytest.warns(UserWarning, match="past the gate"), pytest.raises(CircuitOpenError):
        await litellm.acompletion(**call_kwargs(server, "cb-sdk-open"), num_retries=1)


# --- outcomes -----------------------------------------------------------------------------------------------


async def test_async_outcomes_with_mock_response() -> None:
    callback = ResilienceCallback(breaker(threshold=2)).register()
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(model="openai/cb-mock", messages=MESSAGES, mock_response=rate_limit_error())
    assert callback.signals_snapshot(model="openai/cb-mock").consecutive_failures == 1
    await litellm.acompletion(model="openai/cb-mock", messages=MESSAGES, mock_response="fine")
    assert callback.signals_snapshot(model="openai/cb-mock").consecutive_failures == 0
    assert signals_snapshot("openai/cb-mock").current_inflight == 0
    assert held_calls() == 0


def test_sync_calls_are_not_gated_but_their_outcomes_are_recorded() -> None:
    callback = ResilienceCallback(breaker(threshold=2)).register()
    for _ in range(3):  # the third goes through although the circuit is open: no sync hook can refuse it
        with pytest.raises(litellm.RateLimitError):
            litellm.completion(model="openai/cb-sync", messages=MESSAGES, mock_response=rate_limit_error())
    assert callback.signals_snapshot(model="openai/cb-sync").circuit_state == "open"
    with pytest.raises(CircuitOpenError):  # async calls to the same target are gated
        asyncio.run(litellm.acompletion(model="openai/cb-sync", messages=MESSAGES, mock_response="x"))


def test_sync_success_is_recorded(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker(threshold=3)).register()
    server.script("cb-sync-ok", unavailable())
    kwargs = call_kwargs(server, "cb-sync-ok")
    with pytest.raises(litellm.ServiceUnavailableError):
        litellm.completion(**kwargs)
    target = target_key("openai/cb-sync-ok", api_base=server.api_base)
    assert signals_snapshot(target).consecutive_failures == 1
    litellm.completion(**kwargs)  # LiteLLM reports sync success from a thread pool, after the call returns
    assert eventually(lambda: signals_snapshot(target).consecutive_failures == 0)
    assert callback.targets == [target]


# --- streams ------------------------------------------------------------------------------------------------


async def test_abandoned_stream_gives_its_permit_back(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker()).register()
    server.default("cb-stream", sse("a", "b", "c", "d"))
    stream = await litellm.acompletion(**call_kwargs(server, "cb-stream"), stream=True)
    async for _chunk in stream:
        break
    assert callback.signals_snapshot(model="openai/cb-stream").current_inflight == 1
    del stream, _chunk  # LiteLLM fires no event for an abandoned stream
    gc.collect()
    assert await aeventually(lambda: callback.signals_snapshot(model="openai/cb-stream").current_inflight == 0)
    assert await aeventually(lambda: held_calls() == 0)


# LiteLLM drops an un-awaited coroutine when cancelled early; pytest, recording that warning, would keep the
# coroutine (the warning's source) and with it the call's logging object alive until the test ends.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_cancelled_call_gives_its_permit_back(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker()).register()
    server.default("cb-cancel", ok("late", delay=1.0))
    task = asyncio.ensure_future(litellm.acompletion(**call_kwargs(server, "cb-cancel")))
    assert await aeventually(lambda: inflight(callback, "openai/cb-cancel") == 1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    del task  # its traceback holds the call's frames, and so LiteLLM's logging object
    gc.collect()
    assert await aeventually(lambda: inflight(callback, "openai/cb-cancel") == 0)
    assert callback.signals_snapshot(model="openai/cb-cancel").consecutive_failures == 0  # not the provider's fault


async def test_finished_stream_counts_as_success(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker(threshold=3)).register()
    server.script("cb-stream-ok", unavailable(), sse("x", "y"))
    kwargs = call_kwargs(server, "cb-stream-ok")
    with pytest.raises(litellm.ServiceUnavailableError):  # a failure before the first chunk is an attempt's
        await litellm.acompletion(**kwargs, stream=True)
    assert callback.signals_snapshot(model="openai/cb-stream-ok").consecutive_failures == 1
    stream = await litellm.acompletion(**kwargs, stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "xy"
    snapshot = lambda: callback.signals_snapshot(model="openai/cb-stream-ok")  # noqa: E731
    assert await aeventually(lambda: snapshot().consecutive_failures == 0 and snapshot().current_inflight == 0)


async def test_mid_stream_failure_is_recorded(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker(threshold=3)).register()
    server.default("cb-broken", sse("a", "b", "c", fail_after=1))
    stream = await litellm.acompletion(**call_kwargs(server, "cb-broken"), stream=True)
    with pytest.raises(Exception):  # noqa: B017  LiteLLM's MidStreamFallbackError
        async for _chunk in stream:
            pass
    snapshot = lambda: callback.signals_snapshot(model="openai/cb-broken")  # noqa: E731
    assert await aeventually(lambda: snapshot().consecutive_failures == 1 and snapshot().current_inflight == 0)


# --- registration -------------------------------------------------------------------------------------------


async def test_two_callbacks_with_different_configs_both_receive_events() -> None:
    first = ResilienceCallback(breaker(threshold=3), registry=Registry()).register()
    second = ResilienceCallback(breaker(threshold=5), registry=Registry()).register()
    manager = litellm.logging_callback_manager
    assert manager._get_custom_logger_key(first) != manager._get_custom_logger_key(second)
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(model="openai/cb-two", messages=MESSAGES, mock_response=rate_limit_error())
    views = [callback.signals_snapshot(model="openai/cb-two") for callback in (first, second)]
    assert [view.consecutive_failures for view in views] == [1, 1]
    await litellm.acompletion(model="openai/cb-two", messages=MESSAGES, mock_response="ok")
    views = [callback.signals_snapshot(model="openai/cb-two") for callback in (first, second)]
    assert [view.consecutive_failures for view in views] == [0, 0]


async def test_callbacks_sharing_state_count_each_call_once() -> None:
    config = breaker(threshold=3)
    first, second = ResilienceCallback(config).register(), ResilienceCallback(config).register()
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(model="openai/cb-shared", messages=MESSAGES, mock_response=rate_limit_error())
    assert first.signals_snapshot(model="openai/cb-shared").consecutive_failures == 1
    assert second.signals_snapshot(model="openai/cb-shared").consecutive_failures == 1


async def test_same_callback_registered_twice_gates_and_counts_once(server: FixtureServer) -> None:
    callback = ResilienceCallback(ResilientConfig(backpressure=BackpressureConfig(max_inflight=1, max_wait=0)))
    litellm.callbacks.append(callback)
    litellm.callbacks.append(callback)
    callback.register()  # a no-op: already there
    assert sum(1 for c in litellm.callbacks if c is callback) == 2
    server.default("cb-twice", ok("once", delay=0.5))
    call = asyncio.ensure_future(litellm.acompletion(**call_kwargs(server, "cb-twice")))
    assert await aeventually(lambda: inflight(callback, "openai/cb-twice") == 1)
    assert (await call).choices[0].message.content == "once"  # listed twice, yet one permit of one
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(model="openai/cb-twice", messages=MESSAGES, mock_response=rate_limit_error())
    assert callback.signals_snapshot(model="openai/cb-twice").consecutive_failures == 1
    assert held_calls() == 0
    callback.unregister()
    assert all(c is not callback for c in litellm.logging_callback_manager.get_all_callbacks())


def test_unknown_config_fields_are_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown resilience config field\(s\) retries"):
        ResilienceCallback({"retries": 3})
    with pytest.raises(ConfigError, match="circuit_breaker.failure_threshold"):
        ResilienceCallback({"circuit_breaker": {"failure_threshold": 0}})
    with pytest.raises(TypeError, match="ResilientConfig"):
        ResilienceCallback(42)  # type: ignore[arg-type]
    callback = ResilienceCallback({"circuit_breaker": {"failure_threshold": 7}})
    assert callback.config.circuit_breaker.failure_threshold == 7


# --- targets and signals ------------------------------------------------------------------------------------


def test_target_names() -> None:
    assert target_key("gpt-4o") == "openai/gpt-4o"
    assert target_key("openai/gpt-4o", api_base="http://127.0.0.1:9/v1/") == "openai/gpt-4o@http://127.0.0.1:9/v1"
    assert target_key("openai/gpt-4o", api_base="https://api.openai.com/v1") == "openai/gpt-4o"
    assert target_key("openai/m", api_base="http://h/v1", deployment_id="d1") == "openai/m@http://h/v1#d1"
    assert target_key("m", custom_llm_provider="openai") == "openai/m"


async def test_signals_snapshot_lookups(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker()).register()
    with pytest.raises(LookupError):
        callback.signals_snapshot()
    await litellm.acompletion(**call_kwargs(server, "cb-sig"))
    await litellm.acompletion(model="openai/cb-sig", messages=MESSAGES, mock_response="x")
    endpoint = target_key("openai/cb-sig", api_base=server.api_base)
    everything = callback.signals_snapshot(model="openai/cb-sig")
    assert set(everything.targets) == {endpoint, "openai/cb-sig"}
    assert everything.target == "openai/cb-sig"  # the bare model's own target is the headline
    assert callback.signals_snapshot(model="openai/cb-sig", api_base=server.api_base + "/").target == endpoint
    assert callback.signals_snapshot(model=endpoint).targets.keys() == {endpoint}
    assert callback.signals_snapshot().target == endpoint  # the first target this callback used
    with pytest.raises(KeyError, match="cb-unknown"):
        callback.signals_snapshot(model="openai/cb-unknown")


async def test_cache_hits_and_unrelated_events_do_not_leak(server: FixtureServer) -> None:
    callback = ResilienceCallback(breaker()).register()
    server.default("cb-429", rate_limited(3))
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(**call_kwargs(server, "cb-429"))
    snapshot = callback.signals_snapshot(model="openai/cb-429")
    assert (snapshot.consecutive_failures, snapshot.current_inflight) == (1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback.log_success_event({"litellm_call_id": "unknown"}, None, None, None)
        callback.log_failure_event({"litellm_call_id": "unknown", "exception": ValueError("x")}, None, None, None)
    assert held_calls() == 0
