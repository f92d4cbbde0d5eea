"""Every call shape through wrapped partner models over HTTP: tools, structured output, agents, usage, batches.

The primary (``ChatOpenAI``) is in an outage unless a test says otherwise, so answers come from the
``ChatAnthropic`` fallback: a target in another wire format, which is where re-binding tools and schemas per
target matters.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_ailib_resilience import FakeClock, ResilientChatModel, ResilientConfig, RetryConfig
from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success
from langchain_ailib_resilience.testing.chat_models import ScriptedChatModel

CONFIG = ResilientConfig(retry=RetryConfig(max_retries=1, initial_delay=0.01, max_delay=0.02))
PRIMARY, BACKUP = "gpt-4o", "claude-sonnet-4-5"  # models with profiles: create_agent picks ProviderStrategy


class Answer(BaseModel):
    city: str
    temperature: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny, 21 degrees"


def chain(emu: ProviderEmulator, *, outage: bool = True) -> ResilientChatModel:
    if outage:
        emu.set_default(PRIMARY, Fault.overloaded())
    return ResilientChatModel(
        CONFIG,
        model=ChatOpenAI(model=PRIMARY, base_url=emu.openai_base, api_key="k"),
        fallbacks=[ChatAnthropic(model=BACKUP, base_url=emu.base_url, api_key="k")],
        clock=FakeClock(),
    )


@pytest.mark.parametrize("outage", [False, True], ids=["primary", "fallback"])
@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_bound_tools_come_back_as_tool_calls(provider_emulator: ProviderEmulator, outage: bool, stream: bool) -> None:
    bound = chain(provider_emulator, outage=outage).bind_tools([get_weather])
    if stream:
        message: Any = None
        for chunk in bound.stream("Weather in Paris?"):
            message = chunk if message is None else message + chunk
    else:
        message = bound.invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "example"})]
    assert provider_emulator.count(BACKUP) == (1 if outage else 0)


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
@pytest.mark.parametrize("outage", [False, True], ids=["primary", "fallback"])
def test_structured_output_is_parsed_whichever_target_answers(
    provider_emulator: ProviderEmulator, method: str, outage: bool
) -> None:
    emu = provider_emulator
    if method == "json_mode":  # the schema travels only in the prompt: the script answers in JSON
        emu.set_default(BACKUP, Success(text='{"city": "Oslo", "temperature": 4}'))
        emu.set_default(None, Success(text='{"city": "Oslo", "temperature": 4}'))
    structured = chain(emu, outage=outage).with_structured_output(Answer, method=method)
    expected = Answer(city="Oslo", temperature=4) if method == "json_mode" else Answer(city="example", temperature=4)
    assert structured.invoke("Oslo is at 4 degrees") == expected
    assert asyncio.run(structured.ainvoke("Oslo is at 4 degrees")) == expected
    assert emu.count(BACKUP) == (2 if outage else 0)


def test_create_agent_with_response_format_over_partner_models(provider_emulator: ProviderEmulator) -> None:
    # Was: "`get_weather` is not strict. Only `strict` function tools can be auto-parsed", no request sent.
    emu = provider_emulator
    agent = create_agent(model=chain(emu, outage=False), tools=[get_weather], response_format=Answer)
    result = agent.invoke({"messages": [{"role": "user", "content": "Weather in Paris? It is 21 degrees."}]})
    assert result["structured_response"] == Answer(city="example", temperature=21)
    first = emu.requests[0].body
    assert first["response_format"]["type"] == "json_schema"
    assert all(t["function"].get("strict") is True for t in first["tools"])


def test_create_agent_rides_an_outage_to_the_fallback(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    agent = create_agent(model=chain(emu), tools=[get_weather], response_format=Answer)
    result = agent.invoke({"messages": [{"role": "user", "content": "Weather in Paris? It is 21 degrees."}]})
    assert result["structured_response"] == Answer(city="example", temperature=21)
    turns = emu.count(BACKUP)
    assert turns == 2  # the tool call, then the structured answer
    assert emu.count(PRIMARY) == 2 * turns  # each turn: one attempt and one retry on the primary, no more


def test_create_agent_over_a_mapping_target_without_a_profile(provider_emulator: ProviderEmulator) -> None:
    # Was: AttributeError: 'dict' object has no attribute 'lower' (create_agent read our `model` field).
    emu = provider_emulator
    model = ResilientChatModel(
        CONFIG, model={"model": "openai/gpt-emu", "api_base": emu.openai_base, "api_key": "k"}, clock=FakeClock()
    )
    assert model.profile is None
    assert model.model_name == "gpt-emu"
    agent = create_agent(model=model, tools=[get_weather], response_format=Answer)
    result = agent.invoke({"messages": [{"role": "user", "content": "Weather in Paris, 19 degrees?"}]})
    assert result["structured_response"] == Answer(city="example", temperature=19)


def test_create_agent_over_a_scripted_model() -> None:
    answer = AIMessage("", tool_calls=[{"name": "Answer", "args": {"city": "Rome", "temperature": 30}, "id": "1"}])
    scripted = ScriptedChatModel(responses=[answer], provider="test", model_name="scripted")
    agent = create_agent(model=ResilientChatModel(CONFIG, model=scripted), tools=[get_weather], response_format=Answer)
    result = agent.invoke({"messages": [{"role": "user", "content": "hi"}]})
    assert result["structured_response"] == Answer(city="Rome", temperature=30)


def test_the_profile_claims_only_what_every_target_can_do(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    model = chain(emu, outage=False)
    profile = model.profile
    assert profile is not None and profile.get("structured_output") is True and profile.get("tool_calling") is True
    limits = [m.profile["max_input_tokens"] for m in (model.model, model.fallbacks[0])]  # type: ignore[union-attr,index]
    assert profile.get("max_input_tokens") == min(limits)
    with_unknown = ResilientChatModel(CONFIG, model=model.model, fallbacks=["openai/gpt-emu"])
    assert with_unknown.profile is None  # a LiteLLM id's capabilities are unknown: nothing promised


def test_usage_batches_and_events_through_the_fallback(provider_emulator: ProviderEmulator) -> None:
    emu = provider_emulator
    model = chain(emu)
    message = model.invoke("hi")
    assert message.usage_metadata is not None and message.usage_metadata["input_tokens"] == 10
    assert [m.text for m in model.batch(["a", "b", "c"])] == ["Hello from the provider emulator."] * 3

    async def run() -> tuple[list[str], list[str]]:
        answers = [m.text for m in await model.abatch(["a", "b"])]
        kinds = [event["event"] async for event in model.astream_events("hi", version="v2")]
        return answers, kinds

    answers, kinds = asyncio.run(run())
    assert answers == ["Hello from the provider emulator."] * 2
    assert "on_chat_model_stream" in kinds and "on_chat_model_end" in kinds
