"""The package root's public face: its version and the exact names it exports."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import langchain_ailib_resilience as pkg

# Changing the public face is a deliberate act: edit this list together with ``__all__``.
PUBLIC_NAMES = [
    "AttemptContext",
    "AttemptRecord",
    "AuthenticationError",
    "Backpressure",
    "BackpressureConfig",
    "BackpressureError",
    "Candidate",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigError",
    "DeadlineExceededError",
    "FakeClock",
    "FallbackChain",
    "FallbackableError",
    "InvalidRequestError",
    "OverloadedError",
    "PreflightChecker",
    "ProviderConnectionError",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitExceededError",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterConfig",
    "Registry",
    "RequestTooLargeError",
    "ResilienceCallback",
    "ResilienceError",
    "ResilienceEvent",
    "ResilienceMiddleware",
    "ResilientChatModel",
    "ResilientConfig",
    "ResilientExecutor",
    "RetryBudgetConfig",
    "RetryConfig",
    "RetryableError",
    "ServerError",
    "SignalsSnapshot",
    "StandardErrorCode",
    "SystemClock",
    "TargetSignals",
    "Ticket",
    "__version__",
    "classify_error",
    "parse_retry_after",
    "reset_registry",
    "resilient_acompletion",
    "resilient_completion",
    "signals_snapshot",
]


def test_all_is_pinned_and_sorted() -> None:
    assert pkg.__all__ == PUBLIC_NAMES
    assert sorted(pkg.__all__) == pkg.__all__
    assert len(set(pkg.__all__)) == len(pkg.__all__)


def test_every_public_name_resolves() -> None:
    # Includes the lazily loaded integrations: a name in __all__ that fails on access breaks `import *`.
    namespace: dict[str, object] = {}
    exec("from langchain_ailib_resilience import *", namespace)  # noqa: S102 - the star import is the contract
    missing = [name for name in PUBLIC_NAMES if name not in namespace]
    assert missing == []
    for name in PUBLIC_NAMES:
        assert getattr(pkg, name) is namespace[name]


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        pkg.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_version_comes_from_the_installed_distribution() -> None:
    assert pkg.__version__ == metadata.version("langchain-ailib-resilience")
    assert importlib.import_module("langchain_ailib_resilience").__version__ == pkg.__version__


def test_version_has_a_fallback_when_the_tree_is_not_installed() -> None:
    # A fresh interpreter in which the distribution's metadata cannot be found, as in a bare checkout on sys.path.
    code = (
        "from importlib import metadata\n"
        "def missing(name):\n"
        "    raise metadata.PackageNotFoundError(name)\n"
        "metadata.version = missing\n"
        "import langchain_ailib_resilience as pkg\n"
        "print(pkg.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "0.0.0+unknown"


def test_chat_model_keyword_types_cover_its_fields() -> None:
    # The TypedDict that types ResilientChatModel(**kwargs) must name exactly the fields pydantic accepts.
    from langchain_ailib_resilience.integrations.langchain._model import ResilientChatModelArgs

    assert set(ResilientChatModelArgs.__annotations__) == set(pkg.ResilientChatModel.model_fields)
