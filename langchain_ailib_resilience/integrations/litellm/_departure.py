"""LiteLLM's pre-API-call hook tells the limiter when a granted request leaves (``departures``)."""

from __future__ import annotations

import threading
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from ... import departures


class _DepartureHook(CustomLogger):
    """Runs in the calling task (or thread) right before LiteLLM hands the request to the provider's client."""

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        departures.departed()


_HOOK = _DepartureHook()
_lock = threading.Lock()


def install() -> None:
    """Register the hook with LiteLLM (idempotent; again if LiteLLM's callback lists were reset) and start noting
    grants. Cheap enough for every call: a membership test when already there."""
    if departures.enabled and _HOOK in litellm.input_callback:
        return
    with _lock:
        if _HOOK not in litellm.input_callback:
            litellm.logging_callback_manager.add_litellm_input_callback(_HOOK)
        departures.enable()
