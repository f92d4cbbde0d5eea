"""Fixtures for the LangChain integration tests."""

from __future__ import annotations

import pytest
from lc_helpers import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
