"""Streams: retry or fall back only before the first chunk, no duplicated tokens, permits always given back."""

from __future__ import annotations

import asyncio
import gc

import pytest
from lc_helpers import overloaded, quota, resilient, scripted, server_error

from langchain_ailib_resilience import FakeClock, OverloadedError, ServerError
from langchain_ailib_resilience.testing.chat_models import MidStreamFailure


def inflight(model: object) -> int:
    return model.signals_snapshot().current_inflight  # type: ignore[attr-defined]


def test_stream_retries_before_the_first_chunk(clock: FakeClock) -> None:
    primary = scripted(server_error(), "one two three")
    model = resilient(primary, clock=clock)
    chunks = [chunk.text for chunk in model.stream("hi")]
    assert chunks == ["one ", "two ", "three"]
    assert len(primary.calls) == 2
    assert clock.sleeps == [0.5]


async def test_astream_falls_back_before_the_first_chunk(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted("from backup", name="backup"), clock=clock)
    chunks = [chunk.text async for chunk in model.astream("hi")]
    assert "".join(chunks) == "from backup"


def test_error_after_the_first_chunk_surfaces_normalised_and_is_not_retried(clock: FakeClock) -> None:
    failure = MidStreamFailure("one two three", server_error(), after_chunks=2)
    primary, backup = scripted(failure, "never"), scripted("never", name="backup")
    model = resilient(primary, backup, clock=clock)
    seen: list[str] = []
    with pytest.raises(ServerError):
        for chunk in model.stream("hi"):
            seen.append(chunk.text)
    assert seen == ["one ", "two "]  # no token repeated, nothing from a retry or a fallback
    assert len(primary.calls) == 1
    assert backup.calls == []
    assert inflight(model) == 0


async def test_async_error_after_the_first_chunk_surfaces_normalised(clock: FakeClock) -> None:
    primary = scripted(MidStreamFailure("one two", overloaded(), after_chunks=1), "never")
    model = resilient(primary, clock=clock)
    seen: list[str] = []
    with pytest.raises(OverloadedError):
        async for chunk in model.astream("hi"):
            seen.append(chunk.text)
    assert seen == ["one "]
    assert len(primary.calls) == 1


def test_permit_is_held_while_streaming_and_given_back_on_early_break(clock: FakeClock) -> None:
    model = resilient(scripted("one two three", cycle=True), clock=clock)
    stream = model.stream("hi")
    assert inflight(model) == 0  # nothing happens before the first iteration
    next(stream)
    assert inflight(model) == 1
    for _ in stream:
        break
    assert inflight(model) == 1  # breaking out of a for loop over a named generator does not close it
    stream.close()
    assert inflight(model) == 0
    for _ in model.stream("hi"):
        break
    assert inflight(model) == 0


def test_never_iterated_stream_sends_nothing_and_holds_nothing(clock: FakeClock) -> None:
    primary = scripted("one two", cycle=True)
    model = resilient(primary, clock=clock)
    stream = model.stream("hi")
    del stream
    assert primary.calls == []
    assert inflight(model) == 0


async def test_async_permit_given_back_on_aclose_and_on_abandon(clock: FakeClock) -> None:
    model = resilient(scripted("one two three", cycle=True), clock=clock)
    stream = model.astream("hi")
    await anext(stream)
    assert inflight(model) == 1
    await stream.aclose()
    assert inflight(model) == 0
    async for _ in model.astream("hi"):
        break  # abandoned without aclose: the loop's async-generator finaliser closes it
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    assert inflight(model) == 0


def test_traced_stream_gives_back_the_permit_on_early_close(clock: FakeClock) -> None:
    from lc_helpers import Recorder

    model = resilient(scripted("one two three", cycle=True), clock=clock)
    stream = model.stream("hi", {"callbacks": [Recorder()]})
    next(stream)
    assert inflight(model) == 1
    stream.close()
    assert inflight(model) == 0


async def test_traced_astream_gives_back_the_permit_on_aclose(clock: FakeClock) -> None:
    from lc_helpers import Recorder

    model = resilient(scripted("one two three", cycle=True), clock=clock)
    stream = model.astream("hi", {"callbacks": [Recorder()]})
    await anext(stream)
    assert inflight(model) == 1
    await stream.aclose()
    assert inflight(model) == 0


def test_stream_of_a_failing_target_releases_every_permit(clock: FakeClock) -> None:
    model = resilient(scripted(server_error(), cycle=True), clock=clock)
    with pytest.raises(ServerError):
        list(model.stream("hi"))
    assert inflight(model) == 0
