"""LiteLLM test set-up: a fixture OpenAI-compatible server, and LiteLLM's callback lists reset around each test."""

from __future__ import annotations

from collections.abc import Iterator

import litellm
import pytest
from litellm_fixture_server import FixtureServer


@pytest.fixture(autouse=True)
def _no_leaked_callbacks() -> Iterator[None]:
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.num_retries = None
    yield
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.num_retries = None


@pytest.fixture(scope="session")
def _server() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture
def server(_server: FixtureServer) -> FixtureServer:
    _server.reset()
    return _server
