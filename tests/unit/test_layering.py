"""Layering: the policies and the shared state know nothing of LangChain or LiteLLM; the integrations adapt them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from langchain_core.rate_limiters import BaseRateLimiter

import langchain_ailib_resilience
from langchain_ailib_resilience import RateLimiter
from langchain_ailib_resilience.policies import rate_limiter as policy

PACKAGE = Path(langchain_ailib_resilience.__file__).parent
FRAMEWORKS = ("langchain", "langchain_core", "langgraph", "litellm")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["policies", "state"])
def test_layer_imports_no_framework(layer: str) -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / layer).rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] in FRAMEWORKS
    }
    assert not offenders


def test_root_rate_limiter_is_the_policy_as_a_langchain_rate_limiter() -> None:
    assert issubclass(RateLimiter, policy.RateLimiter)
    assert issubclass(RateLimiter, BaseRateLimiter)
    assert not issubclass(policy.RateLimiter, BaseRateLimiter)
