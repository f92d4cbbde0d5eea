"""Pytest fixture ``provider_emulator``: a fresh ``ProviderEmulator`` per test, stopped afterwards.

Enable it with ``pytest_plugins = ["langchain_ailib_resilience.testing.pytest_plugin"]`` in the top-level
``conftest.py``. One emulator per test keeps scripts, rate limits and request counts from leaking between tests;
starting one costs about a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import ProviderEmulator

__all__ = ["provider_emulator"]


@pytest.fixture
def provider_emulator() -> Iterator[ProviderEmulator]:
    """A running emulator on 127.0.0.1 and a random free port."""
    with ProviderEmulator() as emulator:
        yield emulator
