"""Tools and structured output: re-bound on each target at call time, delegated to each target, stackable."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from lc_helpers import quota, resilient, scripted, server_error
from pydantic import BaseModel

from langchain_ailib_resilience import FakeClock, FallbackableError, ResilientConfig, RetryableError


class Person(BaseModel):
    """A person."""

    name: str
    age: int


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def person_call(**args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "Person", "args": args, "id": "call-1"}])


def test_bind_tools_returns_a_binding_and_rebinds_on_each_target(clock: FakeClock) -> None:
    add_call = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}])
    primary, backup = scripted(quota()), scripted(add_call, name="backup")
    bound = resilient(primary, backup, clock=clock).bind_tools([add], tool_choice="any")
    assert isinstance(bound, RunnableBinding)
    message = bound.invoke("what is 2 + 3?")
    assert message.tool_calls[0]["args"] == {"a": 2, "b": 3}
    expected = [convert_to_openai_tool(add)]
    for model in (primary, backup):
        assert model.calls[0].kwargs["tools"] == expected
        assert model.calls[0].kwargs["tool_choice"] == "any"


def test_streaming_with_tools_keeps_tool_call_chunks(clock: FakeClock) -> None:
    add_call = AIMessage(content="adding", tool_calls=[{"name": "add", "args": {"a": 1, "b": 1}, "id": "c1"}])
    model = resilient(scripted(server_error(), add_call), clock=clock)
    chunks = list(model.bind_tools([add]).stream("1 + 1?"))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.tool_calls[0]["args"] == {"a": 1, "b": 1}


def test_tools_on_a_target_without_tool_support_fail_clearly(clock: FakeClock) -> None:
    fake = GenericFakeChatModel(messages=itertools.cycle([AIMessage("hi")]))
    bound = resilient(fake, clock=clock).bind_tools([add])
    with pytest.raises(NotImplementedError, match="genericfakechatmodel.*does not support tool calling"):
        bound.invoke("hi")


def test_with_structured_output_retries_then_parses(clock: FakeClock) -> None:
    primary = scripted(server_error(), person_call(name="Ada", age=36))
    structured = resilient(primary, clock=clock).with_structured_output(Person)
    assert structured.invoke("who?") == Person(name="Ada", age=36)
    assert len(primary.calls) == 2
    assert primary.calls[1].kwargs["tool_choice"] == "any"  # the target's own with_structured_output


async def test_with_structured_output_falls_back(clock: FakeClock) -> None:
    model = resilient(scripted(quota()), scripted(person_call(name="Bo", age=9), name="backup"), clock=clock)
    assert await model.with_structured_output(Person).ainvoke("who?") == Person(name="Bo", age=9)


def test_include_raw_returns_raw_parsed_and_parsing_error_without_retrying(clock: FakeClock) -> None:
    primary = scripted(person_call(name="Ada", age=36), person_call(name="Ada"))
    structured = resilient(primary, clock=clock).with_structured_output(Person, include_raw=True)
    good = structured.invoke("who?")
    assert good["parsed"] == Person(name="Ada", age=36)
    assert isinstance(good["raw"], AIMessage)
    assert good["parsing_error"] is None
    bad = structured.invoke("who?")
    assert bad["parsed"] is None
    assert bad["parsing_error"] is not None
    assert len(primary.calls) == 2  # a parsing error is an answer, not a provider failure


def test_structured_output_on_a_target_without_support_fails_clearly(clock: FakeClock) -> None:
    fake = GenericFakeChatModel(messages=itertools.cycle([AIMessage("hi")]))
    with pytest.raises(NotImplementedError, match="does not support structured output"):
        resilient(fake, clock=clock).with_structured_output(Person)


def test_with_fallbacks_then_with_structured_output(clock: FakeClock) -> None:
    primary = resilient(scripted(person_call(name="Ada", age=36)), clock=clock)
    chained = primary.with_fallbacks([scripted(person_call(name="X", age=1), name="other")])
    assert chained.with_structured_output(Person).invoke("who?") == Person(name="Ada", age=36)


def test_with_retry_stacked_on_top(clock: FakeClock) -> None:
    primary = scripted(server_error(), "second time")
    model = resilient(primary, clock=clock, config=ResilientConfig.no_retry())
    retrying = model.with_retry(
        retry_if_exception_type=(RetryableError,), stop_after_attempt=2, wait_exponential_jitter=False
    )
    assert retrying.invoke("hi").content == "second time"
    assert len(primary.calls) == 2


def test_with_fallbacks_stacked_on_top_catches_normalised_errors(clock: FakeClock) -> None:
    model = resilient(scripted(server_error()), clock=clock, config=ResilientConfig.no_retry())
    backup = scripted("langchain fallback", name="lc-backup")
    chained = model.with_fallbacks([backup], exceptions_to_handle=(FallbackableError,))
    assert chained.invoke("hi").content == "langchain fallback"


def echo_tools(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    return ",".join(t["function"]["name"] for t in kwargs.get("tools", []))


def test_tool_bindings_are_cached_per_binding_not_shared_between_them(clock: FakeClock) -> None:
    model = resilient(scripted(echo_tools, cycle=True), clock=clock)

    @tool
    def other(x: int) -> int:
        """Another tool."""
        return x

    first, second = model.bind_tools([add]), model.bind_tools([other])
    assert [first.invoke("a").content, second.invoke("b").content, first.invoke("c").content] == [
        "add",
        "other",
        "add",
    ]


def test_extra_bind_tools_options_reach_each_targets_own_bind_tools(clock: FakeClock) -> None:
    primary = scripted("ok")
    resilient(primary, clock=clock).bind_tools([add], parallel_tool_calls=False).invoke("hi")
    kwargs = primary.calls[0].kwargs
    assert kwargs["parallel_tool_calls"] is False
    assert "bind_tools_kwargs" not in kwargs
    assert "tool_choice" not in kwargs
