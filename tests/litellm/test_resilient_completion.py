"""resilient_completion / resilient_acompletion: the executor around LiteLLM, against a real HTTP server."""

from __future__ import annotations

import asyncio
import gc
import warnings

import litellm
import pytest
from litellm_fixture_server import (
    MESSAGES,
    FixtureServer,
    aeventually,
    ok,
    quota,
    rate_limited,
    sse,
    unavailable,
)

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    ConfigError,
    FakeClock,
    OverloadedError,
    QuotaExhaustedError,
    Registry,
    ResilienceCallback,
    ResilienceError,
    ResilientConfig,
    RetryConfig,
    resilient_acompletion,
    resilient_completion,
    signals_snapshot,
)
from langchain_ailib_resilience.integrations.litellm import ResilientAsyncStream, ResilientStream, target_key
from langchain_ailib_resilience.integrations.litellm._completion import _plan


def config(retries: int = 2, threshold: int = 5, cooldown: float = 30.0) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=retries, initial_delay=0.5, max_delay=5.0, jitter="none"),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=threshold, cooldown_seconds=cooldown),
    )


def kwargs_for(server: FixtureServer, model: str) -> dict[str, object]:
    return {"model": f"openai/{model}", "messages": MESSAGES, "api_base": server.api_base, "api_key": "test"}


def target(server: FixtureServer, model: str) -> str:
    return target_key(f"openai/{model}", api_base=server.api_base)


def text(response: object) -> str:
    return response.choices[0].message.content  # type: ignore[attr-defined, no-any-return]


# --- retry, Retry-After, fallback ---------------------------------------------------------------------------


async def test_retry_after_is_honoured_on_the_clock(server: FixtureServer, clock: FakeClock) -> None:
    server.script("rc-429", rate_limited(7), ok("after the wait"))
    response = await resilient_acompletion(**kwargs_for(server, "rc-429"), config=config(), clock=clock)
    assert text(response) == "after the wait"
    assert clock.sleeps == [pytest.approx(7.0)]
    assert server.count("rc-429") == 2


def test_sync_retry_after_is_honoured_on_the_clock(server: FixtureServer, clock: FakeClock) -> None:
    server.script("rc-429-sync", rate_limited(4), ok("sync"))
    response = resilient_completion(**kwargs_for(server, "rc-429-sync"), config=config(), clock=clock)
    assert text(response) == "sync"
    assert clock.sleeps == [pytest.approx(4.0)]
    assert server.count("rc-429-sync") == 2


async def test_503_falls_back_to_the_second_model(server: FixtureServer, clock: FakeClock) -> None:
    server.default("rc-503", unavailable())
    server.default("rc-503-backup", ok("from the backup"))
    response = await resilient_acompletion(
        **kwargs_for(server, "rc-503"), fallbacks=["openai/rc-503-backup"], config=config(retries=1), clock=clock
    )
    assert text(response) == "from the backup"
    assert (server.count("rc-503"), server.count("rc-503-backup")) == (2, 1)  # one retry, then the fallback
    assert clock.sleeps == [0.5]


async def test_quota_429_is_not_retried_but_falls_back(server: FixtureServer, clock: FakeClock) -> None:
    server.default("rc-quota", quota())
    backup = {"model": "openai/rc-quota-backup", "api_base": server.api_base}
    response = await resilient_acompletion(
        **kwargs_for(server, "rc-quota"), fallbacks=[backup], config=config(retries=3), clock=clock
    )
    assert text(response) == "hello"
    assert (server.count("rc-quota"), server.count("rc-quota-backup")) == (1, 1)
    assert clock.sleeps == []


async def test_all_targets_failing_raise_a_normalised_error(server: FixtureServer, clock: FakeClock) -> None:
    server.default("rc-down", unavailable())
    server.default("rc-down-2", quota())
    with pytest.raises(ResilienceError) as caught:
        await resilient_acompletion(
            **kwargs_for(server, "rc-down"), fallbacks=["openai/rc-down-2"], config=config(retries=0), clock=clock
        )
    error = caught.value
    assert isinstance(error, QuotaExhaustedError)
    assert isinstance(error.__cause__, litellm.RateLimitError)
    assert [attempt.target for attempt in error.attempts] == [target(server, "rc-down"), target(server, "rc-down-2")]


# --- the breaker --------------------------------------------------------------------------------------------


async def test_circuit_opens_and_no_request_reaches_the_server_until_the_cooldown(
    server: FixtureServer, clock: FakeClock
) -> None:
    server.default("rc-open", unavailable())
    server.default("rc-open-backup", ok("backup"))
    settings = config(retries=0, threshold=2, cooldown=20)
    for _ in range(2):
        with pytest.raises(OverloadedError):
            await resilient_acompletion(**kwargs_for(server, "rc-open"), config=settings, clock=clock)
    with pytest.raises(CircuitOpenError):
        await resilient_acompletion(**kwargs_for(server, "rc-open"), config=settings, clock=clock)
    response = await resilient_acompletion(
        **kwargs_for(server, "rc-open"), fallbacks=["openai/rc-open-backup"], config=settings, clock=clock
    )
    assert text(response) == "backup"  # an open circuit sends the call to the fallback at once
    assert server.count("rc-open") == 2
    assert signals_snapshot(target(server, "rc-open")).circuit_state == "open"

    clock.advance(20)
    server.default("rc-open", ok("recovered"))
    assert text(await resilient_acompletion(**kwargs_for(server, "rc-open"), config=settings, clock=clock)) == (
        "recovered"
    )
    assert signals_snapshot(target(server, "rc-open")).circuit_state == "closed"


async def test_litellm_retries_are_forced_off(server: FixtureServer) -> None:
    server.default("rc-own", unavailable())
    with pytest.warns(UserWarning, match=r"num_retries=3.*max_retries=2"), pytest.raises(OverloadedError):
        await resilient_acompletion(**kwargs_for(server, "rc-own"), num_retries=3, max_retries=2, config=config(0))
    assert server.count("rc-own") == 1  # LiteLLM and its OpenAI client would each have resent it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero is what we force: no warning
        with pytest.raises(OverloadedError):
            await resilient_acompletion(**kwargs_for(server, "rc-own"), num_retries=0, config=config(0))


async def test_mock_response_and_a_registered_callback_count_once() -> None:
    callback = ResilienceCallback(config(threshold=5)).register()
    with pytest.raises(ResilienceError):
        await resilient_acompletion(
            model="openai/rc-mock",
            messages=MESSAGES,
            mock_response=litellm.RateLimitError("slow down", llm_provider="openai", model="rc-mock"),
            config=config(retries=0, threshold=5),
        )
    assert signals_snapshot("openai/rc-mock").consecutive_failures == 1  # not 2: the callback leaves it alone
    assert callback.targets == []
    response = await resilient_acompletion(model="openai/rc-mock", messages=MESSAGES, mock_response="hi")
    assert text(response) == "hi"
    assert signals_snapshot("openai/rc-mock").current_inflight == 0


# --- streams ------------------------------------------------------------------------------------------------


async def test_stream_falls_back_before_its_first_chunk(server: FixtureServer, clock: FakeClock) -> None:
    server.default("rc-s-down", unavailable())
    server.default("rc-s-up", sse("str", "eam"))
    stream = await resilient_acompletion(
        **kwargs_for(server, "rc-s-down"),
        stream=True,
        fallbacks=["openai/rc-s-up"],
        config=config(retries=0),
        clock=clock,
    )
    assert isinstance(stream, ResilientAsyncStream)
    assert stream.target == target(server, "rc-s-up")
    assert "".join([chunk.choices[0].delta.content or "" async for chunk in stream]) == "stream"
    assert signals_snapshot(target(server, "rc-s-up")).current_inflight == 0


async def test_stream_failing_after_its_first_chunk_surfaces_normalised(server: FixtureServer) -> None:
    server.default("rc-s-mid", sse("a", "b", "c", fail_after=1))
    stream = await resilient_acompletion(
        **kwargs_for(server, "rc-s-mid"), stream=True, fallbacks=["openai/rc-s-other"], config=config(retries=2)
    )
    chunks = []
    with pytest.raises(ResilienceError):
        async for chunk in stream:
            chunks.append(chunk)
    assert len(chunks) == 1
    assert server.count("rc-s-mid") == 1 and server.count("rc-s-other") == 0  # no retry after the first chunk
    assert signals_snapshot(target(server, "rc-s-mid")).current_inflight == 0


async def test_abandoned_async_streams_leave_no_permit_held(server: FixtureServer) -> None:
    server.default("rc-s-drop", sse("a", "b", "c", "d"))
    name = target(server, "rc-s-drop")

    async def first_chunk() -> ResilientAsyncStream:
        stream = await resilient_acompletion(**kwargs_for(server, "rc-s-drop"), stream=True)
        await stream.__anext__()
        assert signals_snapshot(name).current_inflight >= 1
        return stream

    stream = await first_chunk()
    await stream.aclose()  # explicit close: released at once
    assert signals_snapshot(name).current_inflight == 0

    async with await resilient_acompletion(**kwargs_for(server, "rc-s-drop"), stream=True) as stream:
        await stream.__anext__()
    assert signals_snapshot(name).current_inflight == 0

    stream = await first_chunk()
    del stream  # dropped unfinished: the event loop closes the generator
    gc.collect()
    assert await aeventually(lambda: signals_snapshot(name).current_inflight == 0)

    never_iterated = await resilient_acompletion(**kwargs_for(server, "rc-s-drop"), stream=True)
    del never_iterated
    gc.collect()
    assert await aeventually(lambda: signals_snapshot(name).current_inflight == 0)


async def test_cancelled_stream_consumer_leaves_no_permit_held(server: FixtureServer) -> None:
    server.default("rc-s-cancel", sse("a", "b"))
    name = target(server, "rc-s-cancel")
    started = asyncio.Event()

    async def consume() -> None:
        async with await resilient_acompletion(**kwargs_for(server, "rc-s-cancel"), stream=True) as stream:
            await stream.__anext__()
            started.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert signals_snapshot(name).current_inflight == 0


def test_sync_streams(server: FixtureServer) -> None:
    server.default("rc-sync-s", sse("sy", "nc"))
    name = target(server, "rc-sync-s")
    stream = resilient_completion(**kwargs_for(server, "rc-sync-s"), stream=True)
    assert isinstance(stream, ResilientStream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "sync"
    assert signals_snapshot(name).current_inflight == 0

    stream = resilient_completion(**kwargs_for(server, "rc-sync-s"), stream=True)
    next(stream)
    assert signals_snapshot(name).current_inflight == 1
    del stream  # a dropped generator is closed at once
    gc.collect()
    assert signals_snapshot(name).current_inflight == 0

    with resilient_completion(**kwargs_for(server, "rc-sync-s"), stream=True) as stream:
        next(stream)
    assert signals_snapshot(name).current_inflight == 0


# --- input ----------------------------------------------------------------------------------------------------


async def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        await resilient_acompletion(model="openai/x", messages=MESSAGES, config={"bogus": 1})
    with pytest.raises(TypeError, match="model="):
        await resilient_acompletion(messages=MESSAGES)
    with pytest.raises(TypeError, match="fallbacks must be a list"):
        await resilient_acompletion(model="openai/x", messages=MESSAGES, fallbacks="openai/y")
    with pytest.raises(ValueError, match=r"fallbacks\[0\] needs a 'model'"):
        resilient_completion(model="openai/x", messages=MESSAGES, fallbacks=[{"api_base": "http://h/v1"}])
    with pytest.raises(TypeError, match=r"fallbacks\[1\]"):
        resilient_completion(model="openai/x", messages=MESSAGES, fallbacks=["openai/y", 3])  # type: ignore[list-item]


def test_fallbacks_inherit_endpoint_arguments_only_from_the_same_provider() -> None:
    primary = {"api_base": "http://gateway/v1", "api_key": "k", "temperature": 0.2}
    plans = _plan(
        "openai/a",
        MESSAGES,
        ["openai/b", "anthropic/claude-3-5-sonnet-20240620", {"model": "openai/c", "api_base": "http://other/v1"}],
        dict(primary),
    )
    assert [plan.name for plan in plans] == [
        "openai/a@http://gateway/v1",
        "openai/b@http://gateway/v1",
        "anthropic/claude-3-5-sonnet-20240620",
        "openai/c@http://other/v1",
    ]
    assert plans[1].kwargs["api_key"] == "k"
    assert "api_key" not in plans[2].kwargs and "api_base" not in plans[2].kwargs
    assert all(plan.kwargs["temperature"] == 0.2 for plan in plans)
    assert all(plan.kwargs["num_retries"] == 0 and plan.kwargs["max_retries"] == 0 for plan in plans)


async def test_share_state_false_cannot_switch_the_breakers_memory_off(server: FixtureServer, clock: FakeClock) -> None:
    server.default("rc-private", unavailable())
    private = config(retries=0, threshold=2).model_copy(update={"share_state": False})
    with pytest.raises(ConfigError, match="share_state=False.*registry=Registry"):
        await resilient_acompletion(**kwargs_for(server, "rc-private"), config=private, clock=clock)
    assert server.count("rc-private") == 0
    scope = Registry()  # the way to keep state apart from the process: one scope, reused
    for _ in range(2):
        with pytest.raises(OverloadedError):
            await resilient_acompletion(**kwargs_for(server, "rc-private"), config=private, clock=clock, registry=scope)
    with pytest.raises(CircuitOpenError):
        await resilient_acompletion(**kwargs_for(server, "rc-private"), config=private, clock=clock, registry=scope)
    assert server.count("rc-private") == 2
