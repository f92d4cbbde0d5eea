"""Tracing: one chain run per call, a tagged child run per attempt, on_retry, custom events, no double tokens."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tracers.context import collect_runs
from langchain_core.tracers.schemas import Run
from lc_helpers import Recorder, overloaded, quota, resilient, scripted, server_error
from tenacity import RetryCallState

from langchain_ailib_resilience import FakeClock, ServerError


def ordered(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda run: run.dotted_order or "")


def test_one_chain_run_with_a_tagged_child_run_per_attempt(clock: FakeClock) -> None:
    model = resilient(scripted(server_error(), "hello"), scripted("unused", name="backup"), clock=clock)
    with collect_runs() as collector:
        model.invoke("hi", {"run_name": "answer"})
    [root] = collector.traced_runs
    assert (root.name, root.run_type) == ("answer", "chain")
    first, second = ordered(root.child_runs)
    assert (first.run_type, second.run_type) == ("llm", "llm")
    assert "retry:attempt:1" in first.tags
    assert "retry:attempt:2" in second.tags
    assert first.error is not None
    assert second.error is None
    assert second.extra["metadata"]["resilience_attempt"] == 2
    [retry] = [event for event in root.events if event["name"] == "retry"]
    assert retry["kwargs"]["attempt"] == 1
    assert retry["kwargs"]["exception_type"] == "ServerError"
    assert retry["kwargs"]["slept"] == 0.5


def test_fallback_attempts_are_tagged_with_index_and_model(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted("from backup", name="backup"), clock=clock)
    with collect_runs() as collector:
        model.invoke("hi")
    [root] = collector.traced_runs
    primary, backup = ordered(root.child_runs)
    assert not any(tag.startswith("fallback:") for tag in primary.tags)
    assert {"retry:attempt:1", "fallback:index:1", "fallback:model:test/backup"} <= set(backup.tags)
    metadata = backup.extra["metadata"]
    assert metadata["resilience_target"] == "test/backup"
    assert metadata["resilience_fallback_index"] == 1
    assert (metadata["ls_provider"], metadata["ls_model_name"]) == ("test", "backup")  # who answered


async def test_async_run_tree_matches(clock: FakeClock) -> None:
    model = resilient(scripted(server_error(), "hello"), clock=clock)
    with collect_runs() as collector:
        await model.ainvoke("hi")
    [root] = collector.traced_runs
    assert [sorted(t for t in run.tags if t.startswith("retry:")) for run in ordered(root.child_runs)] == [
        ["retry:attempt:1"],
        ["retry:attempt:2"],
    ]
    assert [event["name"] for event in root.events].count("retry") == 1


def test_on_retry_receives_tenacity_retry_call_state(clock: FakeClock, recorder: Recorder) -> None:
    model = resilient(scripted(server_error(), server_error(), "hello"), clock=clock)
    model.invoke("hi", {"callbacks": [recorder]})
    assert all(isinstance(state, RetryCallState) for state in recorder.retries)
    assert [state.attempt_number for state in recorder.retries] == [1, 2]
    assert [state.upcoming_sleep for state in recorder.retries] == [0.5, 1.0]
    assert [state.idle_for for state in recorder.retries] == [0.5, 1.5]
    outcome = recorder.retries[0].outcome
    assert outcome is not None and outcome.failed
    assert isinstance(outcome.exception(), ServerError)


def test_custom_events_for_retries_breaker_fallback_and_rejection(clock: FakeClock, recorder: Recorder) -> None:
    model = resilient(scripted(overloaded(), cycle=True), scripted("ok", name="backup", cycle=True), clock=clock)
    model.invoke("hi", {"callbacks": [recorder]})
    names = [name for name, _ in recorder.custom]
    assert names == [
        "resilience.retry",
        "resilience.retry",
        "resilience.state_change",
        "resilience.give_up",
        "resilience.fallback",
    ]
    state_change = recorder.custom[2][1]
    assert (state_change["target"], state_change["to_state"]) == ("test/primary", "open")
    fallback = recorder.custom[4][1]
    assert (fallback["code"], fallback["next_target"]) == ("E3002", "test/backup")
    recorder.custom.clear()
    model.invoke("again", {"callbacks": [recorder]})
    assert [name for name, _ in recorder.custom] == ["resilience.rejected", "resilience.fallback"]


async def test_custom_events_show_in_astream_events(clock: FakeClock) -> None:
    model = resilient(scripted(overloaded(), cycle=True), scripted("ok", name="backup", cycle=True), clock=clock)
    events = [event async for event in model.astream_events("hi", version="v2")]
    custom = [event["name"] for event in events if event["event"] == "on_custom_event"]
    assert custom == [
        "resilience.retry",
        "resilience.retry",
        "resilience.state_change",
        "resilience.give_up",
        "resilience.fallback",
    ]
    [end] = [event for event in events if event["event"] == "on_chain_end"]
    assert end["name"] == "ResilientChatModel"


async def test_astream_events_shows_each_token_once(clock: FakeClock) -> None:
    model = resilient(scripted(server_error(), "one two three"), clock=clock)
    events = [event async for event in model.astream_events("hi", version="v2")]
    tokens = [event["data"]["chunk"].text for event in events if event["event"] == "on_chat_model_stream"]
    assert tokens == ["one ", "two ", "three"]
    output = [event["data"]["chunk"].text for event in events if event["event"] == "on_chain_stream"]
    assert output == tokens


def test_models_own_tags_metadata_and_callbacks_are_merged(clock: FakeClock, recorder: Recorder) -> None:
    model = resilient(scripted("hello"), clock=clock, tags=["mine"], metadata={"team": "search"}, callbacks=[recorder])
    with collect_runs() as collector:
        model.invoke("hi", {"tags": ["caller"], "metadata": {"request": 7}})
    [root] = collector.traced_runs
    assert {"mine", "caller"} <= set(root.tags)
    assert root.extra["metadata"]["team"] == "search"
    assert root.extra["metadata"]["request"] == 7
    assert ("chain_start", "ResilientChatModel") in recorder.events


def test_generate_opens_one_llm_run_with_no_nested_llm_runs(clock: FakeClock, recorder: Recorder) -> None:
    model = resilient(scripted(server_error(), "hello"), clock=clock)
    with collect_runs() as collector:
        model.generate([[HumanMessage("hi")]], callbacks=[recorder])
    [root] = collector.traced_runs
    assert root.run_type == "llm"
    assert root.child_runs == []
    assert [event["name"] for event in root.events].count("retry") == 1
    assert [name for name, _ in recorder.custom] == ["resilience.retry"]


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_stream_events_v3_retries_before_the_first_event(clock: FakeClock) -> None:
    primary = scripted(server_error(), "hello there")
    model = resilient(primary, clock=clock)
    stream = model.stream_events("hi", version="v3")
    events = list(stream)
    assert events
    assert stream.output.text == "hello there"
    assert len(primary.calls) == 2


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
async def test_astream_events_v3_falls_back(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted("from backup", name="backup"), clock=clock)
    stream = await model.astream_events("hi", version="v3")
    events = [event async for event in stream]
    assert events
    assert (await stream.output).text == "from backup"


def test_unobserved_agrees_with_langchains_own_configuration() -> None:
    from langchain_core.callbacks import CallbackManager
    from langchain_core.globals import set_debug
    from langchain_core.runnables.config import ensure_config, get_callback_manager_for_config
    from langsmith import tracing_context

    from langchain_ailib_resilience.integrations.langchain._calls import unobserved

    def agree(config: dict[str, object]) -> bool:
        ensured = ensure_config(config)  # type: ignore[arg-type]
        expected = not get_callback_manager_for_config(ensured).handlers
        assert unobserved(ensured) is expected
        return expected

    assert agree({}) is True
    assert agree({"callbacks": []}) is True
    assert agree({"callbacks": CallbackManager(handlers=[])}) is True
    assert agree({"callbacks": [Recorder()]}) is False
    assert agree({"callbacks": CallbackManager(handlers=[Recorder()])}) is False
    with collect_runs():
        assert agree({}) is False
    set_debug(True)
    try:
        assert agree({}) is False
    finally:
        set_debug(False)
    with tracing_context(enabled=True):  # LangSmith tracing on: the chain run is opened (and sent)
        assert unobserved(ensure_config(None)) is False


def test_every_event_kind_becomes_a_custom_event(recorder: Recorder) -> None:
    from langchain_core.callbacks import CallbackManager

    from langchain_ailib_resilience import ResilienceEvent
    from langchain_ailib_resilience.integrations.langchain._events import Reporter

    run_manager = CallbackManager(handlers=[recorder]).on_chain_start(None, {"input": "hi"})
    reporter = Reporter(run_manager)
    reporter.report(ResilienceEvent("rate_limit_wait", "openai/gpt-4o", 1, delay=0.25))
    assert recorder.custom == [
        (
            "resilience.rate_limit_wait",
            {"kind": "rate_limit_wait", "target": "openai/gpt-4o", "attempt": 1, "delay": 0.25},
        )
    ]
    assert recorder.retries == []
