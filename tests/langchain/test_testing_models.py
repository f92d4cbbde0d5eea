"""The testing chat models users get: ScriptedChatModel plays a script, ChaosChatModel injects faults."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from lc_helpers import resilient, scripted, server_error

from langchain_ailib_resilience import FakeClock, ResilienceError
from langchain_ailib_resilience.testing import ChaosChatModel, MidStreamFailure, ScriptedChatModel


def test_scripted_model_plays_steps_in_order_and_records_calls() -> None:
    def shout(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        return messages[-1].text.upper()

    model = scripted("first", AIMessage("second"), shout, server_error())
    assert model.invoke("a").content == "first"
    assert model.invoke("b").content == "second"
    assert model.invoke("third", stop=["zzz"]).content == "THIRD"
    with pytest.raises(type(server_error())):
        model.invoke("d")
    with pytest.raises(IndexError, match="script exhausted"):
        model.invoke("e")
    assert [call.messages[-1].text for call in model.calls] == ["a", "b", "third", "d", "e"]
    assert model.calls[2].kwargs["stop"] == ["zzz"]


def test_scripted_model_cycles_cuts_at_stop_words_and_streams_words() -> None:
    model = ScriptedChatModel(responses=["one two. three"], cycle=True)
    assert model.invoke("x", stop=["."]).content == "one two"
    chunks = list(model.stream("x"))
    assert [chunk.text for chunk in chunks] == ["one ", "two. ", "three"]
    assert chunks[-1].chunk_position == "last"


async def test_scripted_model_mid_stream_failure_and_latency(clock: FakeClock) -> None:
    failure = MidStreamFailure("one two three", server_error(), after_chunks=2)
    model = scripted(failure, latency=3.0, clock=clock)
    seen = []
    with pytest.raises(type(server_error())):
        async for chunk in model.astream("x"):
            seen.append(chunk.text)
    assert seen == ["one ", "two "]
    assert clock.sleeps == [3.0]


def test_scripted_model_retries_itself_like_an_sdk() -> None:
    model = scripted(server_error(), server_error(), "third", max_retries=2)
    assert model.invoke("x").content == "third"
    assert len(model.calls) == 3


def test_chaos_model_injects_faults_at_its_rate_and_can_be_switched_off() -> None:
    inner = scripted("fine", cycle=True)
    always = ChaosChatModel(inner=inner, fault_rate=1.0, seed=1)
    with pytest.raises(ResilienceError) as info:
        always.invoke("x")
    assert info.value.retryable
    assert inner.calls == []
    off = ChaosChatModel(inner=inner, fault_rate=1.0, enabled=False)
    assert off.invoke("x").content == "fine"
    never = ChaosChatModel(inner=inner, fault_rate=0.0, faults=[ValueError("custom")])
    assert never.invoke("x").content == "fine"
    assert (always.stats.faults, never.stats.faults) == (1, 0)


def test_chaos_model_is_reproducible_with_a_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        model = ChaosChatModel(inner=scripted("ok", cycle=True), fault_rate=0.5, seed=seed)
        results = []
        for _ in range(20):
            try:
                results.append(model.invoke("x").text)
            except ResilienceError as error:
                results.append(error.code.value)
        return results

    assert outcomes(7) == outcomes(7)
    assert len(set(outcomes(7))) > 1


def test_chaos_model_fails_mid_stream_and_adds_latency(clock: FakeClock) -> None:
    model = ChaosChatModel(
        inner=scripted("one two three", cycle=True), fault_rate=0.0, mid_stream_fault_rate=1.0, latency=2.0, clock=clock
    )
    seen = []
    with pytest.raises(ResilienceError):
        for chunk in model.stream("x"):
            seen.append(chunk.text)
    assert seen == ["one "]
    assert model.stats.mid_stream_faults == 1
    assert clock.sleeps == [2.0]


def test_an_app_behind_resilient_chat_model_survives_chaos(clock: FakeClock) -> None:
    chaotic = ChaosChatModel(inner=scripted("ok", cycle=True), fault_rate=0.3, seed=11)
    model = resilient(chaotic, scripted("backup", name="backup", cycle=True), clock=clock)
    answers = [model.invoke(f"q{i}").text for i in range(30)]
    assert set(answers) <= {"ok", "backup"}
    assert chaotic.stats.faults > 0
    assert "ok" in answers
