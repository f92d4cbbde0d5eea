"""LiteLLM integration: ``ResilienceCallback`` (a ``CustomLogger``) and ``resilient_completion``/``_acompletion``.

Two ways in, sharing per-target state with each other and with ``ResilientChatModel``:

- ``ResilienceCallback``: append it to ``litellm.callbacks`` (or a Router's) and every async call is gated on
  its target's circuit, rate limit and in-flight limit, and every outcome recorded. It does not retry. Sync
  ``litellm.completion`` cannot be gated by any LiteLLM hook: its outcomes are recorded, nothing more.
- ``resilient_completion``/``resilient_acompletion``: the whole executor (retry with Retry-After, fallback,
  breaker, limiter, in-flight limit) around one call, sync or async, streaming included. LiteLLM's own retries
  (``num_retries``, ``max_retries``) are forced to 0: ours replace theirs.

Importing this module imports LiteLLM; the package root loads it lazily.
"""

from __future__ import annotations

from ._callback import ResilienceCallback, held_calls
from ._common import target_key
from ._completion import (
    ResilientAsyncStream,
    ResilientStream,
    resilient_acompletion,
    resilient_completion,
)

__all__ = [
    "ResilienceCallback",
    "ResilientAsyncStream",
    "ResilientStream",
    "held_calls",
    "resilient_acompletion",
    "resilient_completion",
    "target_key",
]
