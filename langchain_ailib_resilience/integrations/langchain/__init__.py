"""LangChain integration: ``ResilientChatModel`` and ``FallbackChain.as_runnable``.

``ResilientChatModel`` is a ``BaseChatModel`` (so LangGraph's ``create_react_agent`` and ``with_fallbacks``
accept it) whose calls run through the ``ResilientExecutor``: retry with backoff (Retry-After aware), a circuit
breaker, rate limiter and in-flight limit per target, and fallback across targets. Tracing: one chain run per
call, one child run per attempt tagged ``retry:attempt:N`` (fallbacks also ``fallback:index:I`` and
``fallback:model:<target>``), ``on_retry`` with tenacity's ``RetryCallState``, and custom events
``resilience.<kind>`` for retries, fallbacks, rejections and circuit state changes.

Wrapped models' own retries are turned off so attempts do not multiply: a model built from a LiteLLM id is
``ChatLiteLLM(max_retries=0, model_kwargs={"max_retries": 0, "num_retries": 0})``; ``ChatOpenAI``,
``AzureChatOpenAI`` and ``ChatAnthropic`` get copies of their SDK clients with ``max_retries=0`` (``_partners``);
other chat models with a ``max_retries`` field are rebuilt with ``max_retries=0``. The user's instance is never
changed. Pass ``disable_inner_retries=False`` to keep them.

``ResilienceMiddleware`` does the same for ``langchain.agents.create_agent``'s model calls (loaded on first use:
it imports LangChain's agent machinery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._events import EVENT_PREFIX
from ._rate_limiter import RateLimiter

if TYPE_CHECKING:
    from ._fallback import fallback_runnable
    from ._middleware import ResilienceMiddleware
    from ._model import ModelSpec, ResilientChatModel
    from ._runnable import ResilientRunnable

# Loaded on first use: the chat model pulls in LangChain's chat-model machinery, the middleware its agent
# machinery; the package root imports ``RateLimiter`` from here and must stay light.
_LAZY = {
    "fallback_runnable": "._fallback",
    "ModelSpec": "._model",
    "ResilientChatModel": "._model",
    "ResilientRunnable": "._runnable",
    "ResilienceMiddleware": "._middleware",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "EVENT_PREFIX",
    "ModelSpec",
    "RateLimiter",
    "ResilienceMiddleware",
    "ResilientChatModel",
    "ResilientRunnable",
    "fallback_runnable",
]
