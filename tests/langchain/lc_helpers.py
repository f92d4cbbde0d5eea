"""Shared helpers for the LangChain tests: provider-shaped errors, scripted models, a fast config, a recorder."""

from __future__ import annotations

from typing import Any

import httpx
import openai
from langchain_core.callbacks import BaseCallbackHandler

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    FakeClock,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
)
from langchain_ailib_resilience.testing.chat_models import ScriptedChatModel

# Two retries, deterministic delays (no jitter, no budget), a breaker that opens after 3 failures.
FAST = ResilientConfig(
    retry=RetryConfig(max_retries=2, initial_delay=0.5, max_delay=2.0, jitter="none", budget=None),
    circuit_breaker=CircuitBreakerConfig(failure_threshold=3, cooldown_seconds=30.0),
    backpressure=BackpressureConfig(max_inflight=4),
)

_REQUEST = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def openai_error(status: int, message: str = "error", code: str | None = None, **headers: str) -> openai.APIStatusError:
    """An OpenAI SDK error as the SDK raises it for an HTTP answer with this status, body and headers."""
    classes: dict[int, type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
        503: openai.InternalServerError,
    }
    body = {"message": message, "type": code or "error", "code": code}
    response = httpx.Response(
        status, request=_REQUEST, json={"error": body}, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )
    return classes[status](message, response=response, body=body)


def server_error() -> openai.APIStatusError:
    return openai_error(500, "The server had an error while processing your request")


def overloaded() -> openai.APIStatusError:
    return openai_error(503, "The engine is currently overloaded")


def bad_request() -> openai.APIStatusError:
    return openai_error(400, "Invalid value for 'messages'", "invalid_request_error")


def quota() -> openai.APIStatusError:
    return openai_error(429, "You exceeded your current quota", "insufficient_quota")


def scripted(*responses: Any, name: str = "primary", **kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), provider="test", model_name=name, **kwargs)


def resilient(
    model: Any, *fallbacks: Any, clock: FakeClock, config: ResilientConfig = FAST, **kwargs: Any
) -> ResilientChatModel:
    """The model under test: ``config`` positionally first, as users write it, on the test's fake clock."""
    return ResilientChatModel(config, model=model, fallbacks=list(fallbacks), clock=clock, **kwargs)


class Recorder(BaseCallbackHandler):
    """Records the callbacks a call fires, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.retries: list[Any] = []
        self.custom: list[tuple[str, dict[str, Any]]] = []
        self.tokens: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.events.append(("chain_start", kwargs.get("name")))

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append(("chat_model_start", kwargs.get("tags")))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.retries.append(retry_state)

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.custom.append((name, data))
