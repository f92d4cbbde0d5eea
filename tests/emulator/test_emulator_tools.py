"""The emulator answers tool calls and structured output the way OpenAI and Anthropic do, streamed or not.

Checked through the real clients users run (``ChatOpenAI``, ``ChatAnthropic``), so the bodies and stream
events are the ones those parsers accept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_ailib_resilience.testing import ProviderEmulator, Success, ToolCall


@tool
def get_weather(city: str, days: int) -> str:
    """The weather in a city for a number of days."""
    return "sunny"


@tool
def get_time(zone: str) -> str:
    """The time in a zone."""
    return "noon"


class Answer(BaseModel):
    city: str
    temperature: int


def chat(kind: str, emu: ProviderEmulator) -> BaseChatModel:
    if kind == "openai":
        return ChatOpenAI(model="m", base_url=emu.openai_base, api_key="k", max_retries=0)
    return ChatAnthropic(model="m", base_url=emu.base_url, api_key="k", max_retries=0)


PROVIDERS = ["openai", "anthropic"]


def call(model: Any, prompt: Any, *, stream: bool) -> AIMessage:
    if not stream:
        result = model.invoke(prompt)
        assert isinstance(result, AIMessage)
        return result
    total: AIMessageChunk | None = None
    for chunk in model.stream(prompt):
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("kind", PROVIDERS)
def test_offered_tools_get_a_call_with_arguments_from_the_schema_and_the_prompt(
    provider_emulator: ProviderEmulator, kind: str, stream: bool
) -> None:
    model = chat(kind, provider_emulator).bind_tools([get_weather, get_time])
    message = call(model, "Weather in Paris for 4 days?", stream=stream)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "example", "days": 4})]
    assert message.tool_calls[0]["id"]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_text_the_prompt_quotes_fills_string_arguments(provider_emulator: ProviderEmulator, kind: str) -> None:
    model = chat(kind, provider_emulator).bind_tools([get_weather])
    message = call(model, "Weather in '東京' for 3 days? It's \"urgent\", don't wait", stream=False)
    assert message.tool_calls[0]["args"] == {"city": "東京", "days": 3}  # apostrophes in words quote nothing


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_named_tool_choice_is_obeyed_and_none_means_text(
    provider_emulator: ProviderEmulator, kind: str, stream: bool
) -> None:
    base = chat(kind, provider_emulator)
    forced = call(base.bind_tools([get_weather, get_time], tool_choice="get_time"), "hi", stream=stream)
    assert [c["name"] for c in forced.tool_calls] == ["get_time"]
    if kind == "openai":  # Anthropic's none is sent as {"type": "none"} too, but only by newer clients
        plain = call(base.bind_tools([get_weather], tool_choice="none"), "hi", stream=stream)
        assert plain.tool_calls == []
        assert plain.text == "Hello from the provider emulator."


@pytest.mark.parametrize("kind", PROVIDERS)
def test_after_a_tool_result_the_answer_is_text(provider_emulator: ProviderEmulator, kind: str) -> None:
    model = chat(kind, provider_emulator).bind_tools([get_weather])
    first = model.invoke("Weather in Paris for 2 days?")
    tool_call = first.tool_calls[0]
    history = [HumanMessage("Weather in Paris for 2 days?"), first, ToolMessage("sunny", tool_call_id=tool_call["id"])]
    final = model.invoke(history)
    assert final.tool_calls == []
    assert final.text == "Hello from the provider emulator."


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("kind", PROVIDERS)
def test_scripted_tool_calls_are_sent_exactly(provider_emulator: ProviderEmulator, kind: str, stream: bool) -> None:
    provider_emulator.script("m", Success(tool_calls=(ToolCall("get_time", {"zone": "UTC"}, "call_1"),)))
    message = call(chat(kind, provider_emulator).bind_tools([get_weather, get_time]), "hi", stream=stream)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [("get_time", {"zone": "UTC"}, "call_1")]
    provider_emulator.script("m", Success(text="no tools today", tool_calls=()))
    assert call(chat(kind, provider_emulator).bind_tools([get_weather]), "hi", stream=stream).tool_calls == []


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("kind", PROVIDERS)
def test_structured_output_gets_an_object_valid_for_the_schema(
    provider_emulator: ProviderEmulator, kind: str, method: str
) -> None:
    structured = chat(kind, provider_emulator).with_structured_output(Answer, method=method)
    assert structured.invoke("Paris is at 21 degrees") == Answer(city="example", temperature=21)


def test_a_scripted_json_answer_is_sent_as_is(provider_emulator: ProviderEmulator) -> None:
    provider_emulator.script("m", Success(text='{"city": "Oslo", "temperature": -3}'))
    structured = chat("openai", provider_emulator).with_structured_output(Answer, method="json_schema")
    assert structured.invoke("hi") == Answer(city="Oslo", temperature=-3)


def test_json_mode_gets_a_json_object(provider_emulator: ProviderEmulator) -> None:
    model = chat("openai", provider_emulator).bind(response_format={"type": "json_object"})
    assert json.loads(model.invoke("hi").text) == {"answer": "Hello from the provider emulator."}
    asked = model.invoke("Return a JSON with 'setup' and 'punchline' keys, or \"the usual\"")
    text = "Hello from the provider emulator."
    assert json.loads(asked.text) == {"setup": text, "punchline": text}  # the keys the prompt quotes
    provider_emulator.script("m", Success(text='{"city": "Rome", "temperature": 30}'))
    structured = chat("openai", provider_emulator).with_structured_output(Answer, method="json_mode")
    assert structured.invoke("hi") == Answer(city="Rome", temperature=30)
