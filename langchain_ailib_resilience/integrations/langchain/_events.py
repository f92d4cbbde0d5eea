"""Executor events as LangChain callbacks: ``on_retry`` with tenacity's ``RetryCallState``, custom events.

Every ``ResilienceEvent`` (retry, give_up, fallback, rejected, state_change...) becomes a custom event named
``resilience.<kind>`` on the call's run, visible as ``on_custom_event`` in ``astream_events``; retries also go to
``run_manager.on_retry``, which tracers record as a ``retry`` event on the run.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForChainRun,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForChainRun,
    CallbackManagerForLLMRun,
)
from tenacity import Future as TenacityFuture
from tenacity import RetryAction, RetryCallState, Retrying

from ...events import ResilienceEvent

AnyRunManager = (
    CallbackManagerForChainRun
    | AsyncCallbackManagerForChainRun
    | CallbackManagerForLLMRun
    | AsyncCallbackManagerForLLMRun
)
EVENT_PREFIX = "resilience."
# An attempt's start and end, and the call's outcome, are the runs themselves in a LangChain trace (a child run
# per attempt, the chain run's end or error): only the decisions become custom events.
_AS_RUNS = frozenset({"attempt", "success", "failure"})
_RETRYING = Retrying()  # RetryCallState needs a retry object; it is only read for its statistics


def retry_call_state(event: ResilienceEvent, idle_for: float) -> RetryCallState:
    """tenacity's ``RetryCallState`` for a retry event, the shape ``run_manager.on_retry`` and tracers expect."""
    state = RetryCallState(_RETRYING, None, (), {})
    state.attempt_number = event.attempt
    outcome = TenacityFuture(event.attempt)
    if event.error is not None:
        outcome.set_exception(event.error)
    state.outcome = outcome
    delay = event.delay or 0.0
    state.upcoming_sleep = delay
    state.idle_for = idle_for
    state.next_action = RetryAction(delay)
    return state


class Reporter:
    """Executor events as LangChain callbacks on one run.

    A retry becomes ``on_retry`` (tenacity's ``RetryCallState``); every event, retries included, becomes a custom
    event named ``resilience.<kind>`` (``on_custom_event`` in ``astream_events``) whose data is
    ``ResilienceEvent.as_dict()``. Async run managers cannot be awaited from the executor's (sync) listeners, so
    async calls queue events and ``aflush()`` them before each attempt and when the call ends.
    """

    __slots__ = ("idle_for", "pending", "run_manager")

    def __init__(self, run_manager: AnyRunManager) -> None:
        self.run_manager = run_manager
        self.idle_for = 0.0
        self.pending: list[ResilienceEvent] = []

    def _state(self, event: ResilienceEvent) -> RetryCallState:
        self.idle_for += event.delay or 0.0
        return retry_call_state(event, self.idle_for)

    def _manager_kwargs(self) -> dict[str, Any]:
        rm = self.run_manager
        return {
            "handlers": rm.handlers,
            "inheritable_handlers": rm.inheritable_handlers,
            "parent_run_id": rm.run_id,
            "tags": rm.tags,
            "inheritable_tags": rm.inheritable_tags,
            "metadata": rm.metadata,
            "inheritable_metadata": rm.inheritable_metadata,
        }

    def report(self, event: ResilienceEvent) -> None:
        """Sync listener: report at once."""
        if event.kind in _AS_RUNS:
            return
        rm = self.run_manager
        assert isinstance(rm, CallbackManagerForChainRun | CallbackManagerForLLMRun)
        if event.kind == "retry":
            rm.on_retry(self._state(event))
        CallbackManager(**self._manager_kwargs()).on_custom_event(
            EVENT_PREFIX + event.kind, event.as_dict(), run_id=rm.run_id
        )

    def queue(self, event: ResilienceEvent) -> None:
        """Async listener: report at the next ``aflush()``."""
        if event.kind not in _AS_RUNS:
            self.pending.append(event)

    async def aflush(self) -> None:
        rm = self.run_manager
        assert isinstance(rm, AsyncCallbackManagerForChainRun | AsyncCallbackManagerForLLMRun)
        while self.pending:
            event = self.pending.pop(0)
            if event.kind == "retry":
                await rm.on_retry(self._state(event))
            await AsyncCallbackManager(**self._manager_kwargs()).on_custom_event(
                EVENT_PREFIX + event.kind, event.as_dict(), run_id=rm.run_id
            )
