"""Resilience for LLM calls in LangChain and LiteLLM, driven by AI-Protocol V2 error codes.

Retry with backoff, token-bucket rate limiting, circuit breaking, an in-flight limit and fallback across
models, as a ``BaseChatModel`` wrapper (``ResilientChatModel``), an agent middleware for ``create_agent``
(``ResilienceMiddleware``), a LiteLLM callback (``ResilienceCallback``) and
resilient completion functions. The integrations load lazily: importing this package does not import LiteLLM.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

from .clock import Clock, FakeClock, SystemClock
from .config import (
    BackpressureConfig,
    CircuitBreakerConfig,
    ConfigError,
    RateLimiterConfig,
    ResilientConfig,
    RetryBudgetConfig,
    RetryConfig,
)
from .errors import (
    AttemptRecord,
    AuthenticationError,
    BackpressureError,
    CircuitOpenError,
    DeadlineExceededError,
    FallbackableError,
    InvalidRequestError,
    OverloadedError,
    ProviderConnectionError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitedError,
    RateLimitExceededError,
    RequestTooLargeError,
    ResilienceError,
    RetryableError,
    ServerError,
    StandardErrorCode,
    classify_error,
    parse_retry_after,
)
from .events import ResilienceEvent
from .executor import AttemptContext, Candidate, ResilientExecutor
from .fallback import FallbackChain
from .integrations.langchain._rate_limiter import RateLimiter
from .policies.backpressure import Backpressure
from .policies.circuit_breaker import CircuitBreaker, CircuitState
from .preflight import PreflightChecker, Ticket
from .registry import Registry, reset_registry, signals_snapshot
from .signals import SignalsSnapshot, TargetSignals

if TYPE_CHECKING:
    from .integrations.langchain import ResilienceMiddleware, ResilientChatModel
    from .integrations.litellm import ResilienceCallback, resilient_acompletion, resilient_completion

try:
    __version__ = _metadata.version("langchain-ailib-resilience")
except _metadata.PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0.0.0+unknown"

_LAZY = {
    "ResilientChatModel": "langchain",
    "ResilienceMiddleware": "langchain",
    "ResilienceCallback": "litellm",
    "resilient_completion": "litellm",
    "resilient_acompletion": "litellm",
}


def __getattr__(name: str) -> Any:
    # The integrations import LangChain chat-model machinery or LiteLLM; load them on first use only.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".integrations.{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
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

from .observability import install_defaults as _install_observability  # noqa: E402 - after the names it uses

_install_observability()
