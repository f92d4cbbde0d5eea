"""A call's token estimate, reserved before it is sent (``policies.tokens`` holds the buckets).

- input: LiteLLM's ``token_counter`` when LiteLLM is installed, else ``tiktoken`` (``cl100k_base``) if present,
  else one token per 4 characters;
- output: the call's ``max_tokens``/``max_completion_tokens``, else ``DEFAULT_OUTPUT_TOKENS``.

Outside ``policies`` because it reads framework message shapes and may use LiteLLM.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .policies.tokens import TokenCost

logger = logging.getLogger("langchain_ailib_resilience.pacing")

DEFAULT_OUTPUT_TOKENS = 256
"""The output a call is assumed to use when it sets no ``max_tokens``/``max_completion_tokens``."""
CHARS_PER_TOKEN = 4


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(part) for part in content)
    if isinstance(content, Mapping):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    return ""


def _as_messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as ``{"role", "content"}`` dicts: from dicts, LangChain messages, a prompt value or a string."""
    to_messages = getattr(messages, "to_messages", None)
    if callable(to_messages):
        messages = to_messages()
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, str]] = []
    for message in messages if isinstance(messages, Iterable) else ():
        if isinstance(message, Mapping):
            out.append({"role": str(message.get("role", "user")), "content": _text_of(message.get("content"))})
        elif isinstance(message, str):
            out.append({"role": "user", "content": message})
        else:
            role = getattr(message, "type", "user")
            out.append({"role": "assistant" if role == "ai" else str(role), "content": _text_of(message.content)})
    return out


@functools.lru_cache(maxsize=1)
def _tiktoken_encoding() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its encoding file cannot be had offline
        return None


def _litellm_counter() -> Callable[..., Any] | None:
    try:
        from litellm import token_counter
    except ImportError:
        return None
    return token_counter


def count_input_tokens(model: str | None, messages: Any) -> int:
    """The input tokens of ``messages`` for ``model`` (see the module docstring for how)."""
    chat = _as_messages(messages)
    counter = _litellm_counter()
    if counter is not None:
        try:
            return int(counter(model=model or "", messages=chat))
        except Exception:
            logger.debug("token_counter could not count for %r; estimating", model)
    text = "\n".join(m["content"] for m in chat)
    encoding = _tiktoken_encoding()
    if encoding is not None:
        return len(encoding.encode(text)) + 3 * len(chat)
    return math.ceil(len(text) / CHARS_PER_TOKEN) + 3 * len(chat)


def output_budget(params: Mapping[str, Any]) -> int:
    """``max_completion_tokens`` or ``max_tokens`` when set, else ``DEFAULT_OUTPUT_TOKENS``."""
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_OUTPUT_TOKENS


def estimate_cost(model: str | None, messages: Any, params: Mapping[str, Any]) -> TokenCost:
    return TokenCost(float(count_input_tokens(model, messages)), float(output_budget(params)))


def lazy_cost(model: str | None, messages: Any, params: Mapping[str, Any]) -> Callable[[], TokenCost]:
    """The estimate, made once and only if a target with token limits asks for it."""
    return functools.cache(lambda: estimate_cost(model, messages, params))
