"""Under CI the Redis tests fail rather than skip when redis-server is missing."""

from __future__ import annotations

import pytest
import redis_helpers


def test_ci_flag_is_read_from_the_environment() -> None:
    assert redis_helpers.in_ci({"CI": "true"}) and redis_helpers.in_ci({"CI": "1"})
    assert not redis_helpers.in_ci({}) and not redis_helpers.in_ci({"CI": "false"})


def test_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but redis-server"):
        redis_helpers.missing_server()


def test_missing_server_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        redis_helpers.missing_server()
