"""Helpers of the Redis tests: whether this is CI, and what to do when redis-server is missing."""

from __future__ import annotations

import os

import pytest

MISSING = (
    "redis-server binary not found on PATH: shared-state tests need it "
    "(Debian/Ubuntu: apt-get install redis-server; .ci/run installs it)"
)


def in_ci(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() in {"1", "true", "yes"}


def missing_server() -> None:
    """Skip (locally) or fail (CI) a test that needs the missing redis-server."""
    if in_ci():
        pytest.fail(f"CI=true but {MISSING}", pytrace=False)
    pytest.skip(MISSING)
