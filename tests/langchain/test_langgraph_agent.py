"""ResilientChatModel as the model of LangGraph's prebuilt ReAct agent."""

from __future__ import annotations

import warnings

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from lc_helpers import resilient, scripted, server_error

from langchain_ailib_resilience import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent is deprecated in LangGraph 1.x in favour of langchain
    prebuilt = pytest.importorskip("langgraph.prebuilt")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*create_react_agent.*")
def test_react_agent_calls_the_tool_and_answers_through_retries(clock: FakeClock) -> None:
    call = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1"}])
    primary = scripted(server_error(), call, server_error(), "2 + 3 = 5")
    agent = prebuilt.create_react_agent(resilient(primary, clock=clock), [add])
    result = agent.invoke({"messages": [("user", "what is 2 + 3?")]})
    messages = result["messages"]
    [tool_message] = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_message.content == "5"
    assert messages[-1].content == "2 + 3 = 5"
    assert len(primary.calls) == 4
    assert primary.calls[1].kwargs["tools"][0]["function"]["name"] == "add"
