"""AI-Protocol V2 conformance: the specification's error-classification cases and its error-code table.

The cases are a copy of the specification's files (``cases/``), so a fresh clone runs them without the shared
folder. ``res-*`` retry-decision cases live in the same copy and are tested with the retry policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from langchain_ailib_resilience.errors import (
    FallbackableError,
    ResilienceError,
    RetryableError,
    StandardErrorCode,
    classify_http,
)

CASES_DIR = Path(__file__).parent / "cases"
PROVIDERS = {"mock-openai": "openai", "mock-anthropic": "anthropic"}


def _load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        if path.name == "error-codes.yaml":
            continue
        cases.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return cases


ALL_CASES = _load_cases()
CLASSIFICATION = [c for c in ALL_CASES if c["input"]["type"] == "error_classification"]
SPEC = yaml.safe_load((CASES_DIR / "error-codes.yaml").read_text(encoding="utf-8"))


def test_every_classification_case_is_present() -> None:
    ids = sorted(c["id"] for c in CLASSIFICATION)
    assert ids == [f"err-{n:03d}" for n in range(1, 21)]
    # The retry-decision cases travel with the copy too.
    assert sorted(c["id"] for c in ALL_CASES if c["input"]["type"] == "retry_decision") == [
        "res-001",
        "res-002",
        "res-003",
        "res-004",
    ]


@pytest.mark.parametrize("case", CLASSIFICATION, ids=[c["id"] for c in CLASSIFICATION])
def test_error_classification_case(case: dict[str, Any]) -> None:
    provider = PROVIDERS[case["setup"]["provider"]]
    given, expected = case["input"], case["expected"]

    error = classify_http(given["http_status"], given["response_body"], provider=provider)

    assert isinstance(error, ResilienceError)
    assert error.code.value == expected["error_code"]
    assert error.code.error_name == expected["error_name"]
    assert error.retryable is expected["retryable"]
    assert error.fallbackable is expected["fallbackable"]
    # The marker classes agree with the flags, so LangChain's type-based retry/fallback sees the same thing.
    assert isinstance(error, RetryableError) is expected["retryable"]
    assert isinstance(error, FallbackableError) is expected["fallbackable"]
    assert error.status_code == given["http_status"]
    assert error.provider == provider


def test_the_table_has_thirteen_codes() -> None:
    assert sorted(SPEC["error_codes"]) == sorted(member.value for member in StandardErrorCode)
    assert len(SPEC["error_codes"]) == 13


@pytest.mark.parametrize("code", sorted(SPEC["error_codes"]))
def test_code_flags_match_the_specification(code: str) -> None:
    entry = SPEC["error_codes"][code]
    member = StandardErrorCode(code)

    assert member.code == code
    assert member.error_name == entry["name"]
    assert member == StandardErrorCode[entry["name"].upper()]
    assert member.category == entry["category"]
    assert member.retryable is entry["retryable"]
    assert member.fallbackable is entry["fallbackable"]
    status = entry["http_status"]
    if isinstance(status, list):
        assert member.http_status == tuple(status)
        assert member.http_statuses == tuple(status)
    elif isinstance(status, int):
        assert member.http_status == status
        assert member.http_statuses == (status,)
    else:
        assert member.http_status == status
        assert member.http_statuses == ()


def _mapping_cases(kind: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for provider, mapping in SPEC["provider_mappings"].items():
        for key, name in mapping.get(kind, {}).items():
            rows.append((provider, str(key), name))
    return rows


@pytest.mark.parametrize(("provider", "status", "name"), _mapping_cases("by_http_status"))
def test_provider_status_mapping(provider: str, status: str, name: str) -> None:
    error = classify_http(int(status), None, provider=provider)
    assert error.code.error_name == name


@pytest.mark.parametrize(("provider", "code", "name"), _mapping_cases("by_error_code"))
def test_provider_error_code_mapping(provider: str, code: str, name: str) -> None:
    # The provider's code decides even without a status (a body seen in a stream, say).
    body = (
        {"error": {"code": code, "message": "x"}}
        if provider != "anthropic"
        else {
            "type": "error",
            "error": {"type": code, "message": "x"},
        }
    )
    assert classify_http(None, body, provider=provider).code.error_name == name
    if provider == "gemini":
        body = {"error": {"status": code, "message": "x"}}
        assert classify_http(None, body, provider=provider).code.error_name == name


@pytest.mark.parametrize("rule", SPEC["provider_mappings"]["openai"]["by_error_message"])
def test_openai_message_rules_turn_a_429_into_quota(rule: dict[str, str]) -> None:
    body = {"error": {"message": f"Request failed: {rule['pattern']} problem on this account"}}
    error = classify_http(429, body, provider="openai")
    assert error.code.error_name == rule["maps_to"]
