"""Shared test set-up: offline LiteLLM, a fresh shared registry per test, and a fake clock."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import Iterator

import pytest

from langchain_ailib_resilience import FakeClock, reset_registry

pytest_plugins = ["langchain_ailib_resilience.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
