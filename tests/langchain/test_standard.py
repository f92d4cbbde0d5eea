"""LangChain's standard test suites against ResilientChatModel wrapping fake chat models, offline.

Only feature-flag properties are set here (the suites forbid overriding their tests). Tool calling and
structured output need a model that produces tool calls: the integration suite runs with them off and our own
tests cover them with ``ScriptedChatModel``; a second unit suite runs over a scripted model with them on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_socket
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_ailib_resilience import ResilientChatModel
from langchain_ailib_resilience.testing.chat_models import ScriptedChatModel


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    # Offline for real: any socket but the event loop's own (AF_UNIX) self-pipe fails the test.
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


def _fake() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=itertools.cycle([AIMessage("Hello, how can I help you today?")]))


class TestResilientChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ResilientChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": _fake()}

    @property
    def has_structured_output(self) -> bool:
        return False  # GenericFakeChatModel has no with_structured_output to delegate to


class TestResilientChatModelUnitScripted(ChatModelUnitTests):
    """The same suite over a model that implements bind_tools, so tool and structured-output checks run."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ResilientChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": ScriptedChatModel(responses=["Hello"], cycle=True)}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True


class TestResilientChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ResilientChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": _fake()}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return False
