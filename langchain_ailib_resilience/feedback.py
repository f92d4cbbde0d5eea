"""What an answer says about the provider's limits: its rate-limit headers and the tokens it used.

Duck-typed over every answer an entry point sees, with no import of LiteLLM or LangChain:

- LiteLLM ``ModelResponse`` (``resilient_(a)completion``, the callback): headers in
  ``_hidden_params["additional_headers"]`` (OpenAI's ``x-ratelimit-*`` kept bare, every provider header also as
  ``llm_provider-<name>``) or ``_response_headers``; usage in ``usage`` (``prompt_tokens``/``completion_tokens``).
- LangChain ``ChatResult``/``AIMessage``/agent ``ModelResponse``: usage in ``usage_metadata``
  (``input_tokens``/``output_tokens``) or ``llm_output["token_usage"]``; headers only where the partner model
  puts them: ``response_metadata["headers"]`` when ``ChatOpenAI(include_response_headers=True)``.
  ``ChatAnthropic`` exposes no response headers (langchain-anthropic 1.7), so only its 429s teach a target.

Never raises: an answer it cannot read says nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors.retry_after import normalize_headers

_PREFIX = "llm_provider-"


class Usage(NamedTuple):
    input_tokens: float
    output_tokens: float

    @property
    def total(self) -> float:
        return self.input_tokens + self.output_tokens


def _get(obj: Any, name: str) -> Any:
    try:
        if isinstance(obj, Mapping):
            return obj.get(name)
        return getattr(obj, name, None)
    except Exception:
        return None


def _messages(answer: Any) -> list[Any]:
    """The AI messages inside an answer (ChatResult generations, an agent ModelResponse's result, a message)."""
    generations = _get(answer, "generations")
    if isinstance(generations, list):
        flat = [g for row in generations for g in (row if isinstance(row, list) else [row])]
        return [m for m in (_get(g, "message") for g in flat) if m is not None]
    result = _get(answer, "result")
    if isinstance(result, list):
        return result
    if _get(answer, "usage_metadata") is not None or _get(answer, "response_metadata") is not None:
        return [answer]
    message = _get(answer, "message")  # a ChatGenerationChunk
    return [message] if message is not None else []


def response_headers(answer: Any) -> dict[str, str]:
    """The provider's response headers carried by ``answer`` (lower-case names, LiteLLM's prefix removed)."""
    try:
        found: dict[str, str] = {}
        hidden = _get(answer, "_hidden_params")
        sources: list[Any] = [_get(hidden, "additional_headers") if hidden is not None else None]
        sources.append(_get(answer, "_response_headers"))
        for message in _messages(answer):
            metadata = _get(message, "response_metadata")
            if isinstance(metadata, Mapping):
                sources.append(metadata.get("headers"))
        for source in sources:
            for name, value in normalize_headers(source).items():
                found.setdefault(name.removeprefix(_PREFIX), value)
        return found
    except Exception:
        return {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def _openai_usage(usage: Any) -> Usage | None:
    """``prompt_tokens``/``completion_tokens`` (LiteLLM's ``usage``, LangChain's ``llm_output["token_usage"]``)."""
    if usage is None:
        return None
    prompt, completion = _number(_get(usage, "prompt_tokens")), _number(_get(usage, "completion_tokens"))
    if prompt is None and completion is None:
        return None
    return Usage(prompt or 0.0, completion or 0.0)


def reported_usage(answer: Any) -> Usage | None:
    """The tokens the provider reported for ``answer`` (``None`` when it reported none)."""
    try:
        found = _openai_usage(_get(answer, "usage"))
        if found is not None:
            return found
        total_in = total_out = 0.0
        seen = False
        for message in _messages(answer):
            meta = _get(message, "usage_metadata")
            if meta is None:
                continue
            given_in, given_out = _number(_get(meta, "input_tokens")), _number(_get(meta, "output_tokens"))
            if given_in is None and given_out is None:
                continue
            seen = True
            total_in += given_in or 0.0
            total_out += given_out or 0.0
        if seen:
            return Usage(total_in, total_out)
        return _openai_usage(_get(_get(answer, "llm_output"), "token_usage"))
    except Exception:
        return None
    return None
