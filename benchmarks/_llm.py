"""Clients aimed at the emulator, shared by the goodput and outage benchmarks.

Every client has the SDK's own retries off (``max_retries=0``, ``num_retries=0``), so each logical attempt is one
HTTP request and the emulator's request count is the truth about what reached the provider.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# A model id LiteLLM's local cost map knows: its per-call bookkeeping is cheaper than for an unknown name, and the
# emulator answers whatever model it is asked for.
PRIMARY = "gpt-4o-mini"
FALLBACK = "gpt-4o"
MESSAGES = [{"role": "user", "content": "hi"}]

AsyncCall = Callable[[], Awaitable[Any]]


def quiet_litellm() -> Any:
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False  # type: ignore[attr-defined]
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


def litellm_kwargs(base: str, model: str, timeout: float | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": f"openai/{model}",
        "api_base": base,
        "api_key": "bench-key",
        "max_retries": 0,
        "num_retries": 0,
    }
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def chat_litellm(base: str, model: str, timeout: float | None = None, **extra: Any) -> Any:
    """A LangChain ``ChatLiteLLM`` on the emulator; ``max_retries=1`` is its one attempt (no inner retry)."""
    from langchain_litellm import ChatLiteLLM

    return ChatLiteLLM(
        model=f"openai/{model}",
        api_base=base,
        api_key="bench-key",
        max_retries=1,
        request_timeout=timeout,
        model_kwargs={"max_retries": 0, "num_retries": 0},
        **extra,
    )


def resilient_chat_model_cls() -> Any:
    try:
        from langchain_ailib_resilience.integrations.langchain import ResilientChatModel
    except ImportError:
        return None
    return ResilientChatModel


def resilient_acompletion_fn() -> Any:
    try:
        from langchain_ailib_resilience.integrations.litellm import resilient_acompletion
    except ImportError:
        return None
    return resilient_acompletion
