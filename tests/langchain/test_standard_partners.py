"""LangChain's standard test suites over ResilientChatModel wrapping partner models, against the provider emulator.

``ResilientChatModel(ChatOpenAI(...))`` and ``ResilientChatModel(ChatAnthropic(...))``, each aimed at one
emulator for the module (base URL at the emulator, dummy keys), with tool calling and structured output on: the
emulator answers tools, tool choice and JSON schemas the way the real APIs do. Only feature flags are set here
(the suites forbid overriding their tests), as the partner packages set them for their own suites. Left off,
because they do not apply: audio inputs (gpt-4o and Claude take none), JSON mode on Anthropic (it has none),
images and PDFs inside tool messages on OpenAI (Chat Completions takes them only in user messages), the VCR
benchmark (it replays recorded provider traffic), and serialisation (``ResilientChatModel`` holds live
per-target state and is not ``lc_serializable``).

The multimodal tests download an image and a PDF with ``httpx.get``: they get small local files instead, so the
suite stays offline (only 127.0.0.1 is reachable) and still checks that the content blocks reach the provider.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import pytest_socket
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_ailib_resilience import ResilientChatModel, ResilientConfig, RetryConfig
from langchain_ailib_resilience.testing import ProviderEmulator

CONFIG = ResilientConfig(retry=RetryConfig(max_retries=1, initial_delay=0.01, max_delay=0.02))
OPENAI_MODEL, ANTHROPIC_MODEL = "gpt-4o", "claude-sonnet-4-5"

# A 1x1 PNG and a one-page PDF, for the suites' downloads.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = (
    b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

_EMULATOR = ProviderEmulator()


@pytest.fixture(scope="module", autouse=True)
def _emulator() -> Iterator[ProviderEmulator]:
    with _EMULATOR:
        yield _EMULATOR


@pytest.fixture(autouse=True)
def _offline(_emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _emulator.reset()

    def download(url: str, **_: Any) -> httpx.Response:
        return httpx.Response(200, content=PDF if url.endswith(".pdf") else PNG)

    monkeypatch.setattr(httpx, "get", download)
    # Nothing but the emulator: a request to a provider's public endpoint fails the test.
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


class _Common:
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ResilientChatModel

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True


class _OverOpenAI(_Common):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # stream_usage: langchain-openai asks a custom base URL for streamed usage only when told to.
        model = ChatOpenAI(model=OPENAI_MODEL, base_url=_EMULATOR.openai_base, api_key="test-key", stream_usage=True)
        return {"config": CONFIG, "model": model}

    @property
    def model_override_value(self) -> str:
        return "gpt-4o-mini"

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # A "provider:model" string builds the partner model from the environment, endpoint included.
        env = {"OPENAI_API_KEY": "env-key", "OPENAI_BASE_URL": _EMULATOR.openai_base}
        return env, {"model": f"openai:{OPENAI_MODEL}"}, {"targets": [f"openai/{OPENAI_MODEL}@{_EMULATOR.openai_base}"]}

    @property
    def supports_json_mode(self) -> bool:
        return True


class _OverAnthropic(_Common):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        model = ChatAnthropic(model=ANTHROPIC_MODEL, base_url=_EMULATOR.base_url, api_key="test-key")
        return {"config": CONFIG, "model": model}

    @property
    def model_override_value(self) -> str:
        return "claude-haiku-4-5"

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"ANTHROPIC_API_KEY": "env-key", "ANTHROPIC_BASE_URL": _EMULATOR.base_url}
        expected = {"targets": [f"anthropic/{ANTHROPIC_MODEL}@{_EMULATOR.base_url}"]}
        return env, {"model": f"anthropic:{ANTHROPIC_MODEL}"}, expected

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return True


class TestOverChatOpenAIUnit(_OverOpenAI, ChatModelUnitTests):
    pass


class TestOverChatAnthropicUnit(_OverAnthropic, ChatModelUnitTests):
    pass


class TestOverChatOpenAIIntegration(_OverOpenAI, ChatModelIntegrationTests):
    pass


class TestOverChatAnthropicIntegration(_OverAnthropic, ChatModelIntegrationTests):
    pass
