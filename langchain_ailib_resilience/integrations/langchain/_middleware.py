"""``ResilienceMiddleware``: the agent's model call under our executor, for ``langchain.agents.create_agent``.

``create_agent`` hands each model call to its middlewares' ``wrap_model_call`` as ``handler(request)``, where
``request.model`` is the agent's chat model and ``handler`` binds the request's tools, ``tool_choice`` and
``response_format`` for whatever model the request carries. So a fallback is ``handler(request.override(
model=fallback))``: each target gets the same tools and structured-output strategy, resolved for that model
(``ProviderStrategy`` where the model supports it, ``ToolStrategy`` otherwise), exactly as LangChain's own
``ModelFallbackMiddleware`` does.

The targets are named and built as ``ResilientChatModel`` names and builds them (``_targets``): the same target
name means the same breaker, limiter and in-flight permits whichever entry point calls it, and each model is a
copy with its SDK's own retries off, so one attempt of ours is one HTTP request.

Every executor event (retry, give_up, fallback, rejected, state_change...) is also dispatched as a LangChain custom
event named ``resilience.<kind>`` on the model node's run, as ``ResilientChatModel`` does on its own run, so
``astream_events`` and callback handlers see why a call took the time it did.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from langchain.agents.middleware.types import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.agents.structured_output import StructuredOutputError
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from ...clock import Clock
from ...config import ResilientConfig
from ...events import ResilienceEvent
from ...executor import AttemptContext, Candidate, ResilientExecutor
from ...policies.tokens import TokenCost
from ...registry import Registry
from ...token_estimate import estimate_cost
from ._events import EVENT_PREFIX
from ._targets import TargetSpec, build_model, describe, parse_targets

# Raised inside the handler but not a model-call failure: LangGraph's interrupts and control flow, and
# structured-output parsing errors the agent owns. They leave unchanged, are not counted against a target,
# and are neither retried nor fallen back from.
_NOT_OURS: tuple[type[BaseException], ...] = (GraphBubbleUp, StructuredOutputError)
_CACHE_SIZE = 32

ModelHandler = Callable[[ModelRequest[Any]], ModelResponse[Any]]
AsyncModelHandler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]


class _Escape(BaseException):
    """Carries a ``_NOT_OURS`` exception through the executor, which lets ``BaseException`` pass untouched."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


def _dispatch(event: ResilienceEvent) -> None:
    """Sync listener: the event as a custom event on the current run (none outside a run: then dropped)."""
    with contextlib.suppress(RuntimeError):  # no parent run to attach it to (called outside an agent)
        dispatch_custom_event(EVENT_PREFIX + event.kind, event.as_dict())


class _Queue:
    """Async twin: the executor's listeners are sync, so events wait here for the next ``aflush()``."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: list[ResilienceEvent] = []

    def __call__(self, event: ResilienceEvent) -> None:
        self.pending.append(event)

    async def aflush(self) -> None:
        while self.pending:
            event = self.pending.pop(0)
            with contextlib.suppress(RuntimeError):
                await adispatch_custom_event(EVENT_PREFIX + event.kind, event.as_dict())


class _Chain:
    """The targets for one primary model: specs parsed once, each model built (retries off) on first use."""

    __slots__ = ("_built", "_lock", "_middleware", "primary", "specs")

    def __init__(self, middleware: ResilienceMiddleware, primary: BaseChatModel) -> None:
        self.primary = primary  # held so the cache key (its id) stays this model's
        self.specs: tuple[TargetSpec, ...] = parse_targets(
            primary, middleware.fallbacks, shared_litellm_kwargs=middleware.litellm_kwargs
        )
        self._middleware = middleware
        middleware.executor.keep_private(spec.name for spec in self.specs if spec.private)
        self._built: list[BaseChatModel | None] = [None] * len(self.specs)
        self._lock = threading.Lock()

    def model(self, index: int) -> BaseChatModel:
        model = self._built[index]
        if model is None:
            with self._lock:
                model = self._built[index]
                if model is None:
                    model = build_model(
                        self.specs[index],
                        own_retries_off=self._middleware.disable_inner_retries,
                        standard={},
                        output_version=None,
                    )
                    self._built[index] = model
        return model


class ResilienceMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Retry, rate-limit, circuit-break and fall back the agent's model calls.

    Example::

        agent = create_agent(
            ChatOpenAI(model="gpt-4o"),
            tools=[get_weather],
            middleware=[ResilienceMiddleware(ResilientConfig(), fallbacks=[ChatAnthropic(model="claude-sonnet-4-5")])],
        )

    Each model call runs under the ``ResilientExecutor``: retries with backoff that honour Retry-After, a circuit
    breaker, rate limiter and in-flight limit per target (shared with every other entry point naming that
    target), and fallback across ``fallbacks`` on fallbackable codes only (rate limits, overload, timeouts, an
    open circuit, a spent quota, bad credentials), never on an invalid request.

    Args:
        config: the ``ResilientConfig`` (or a dict of its fields); default ``ResilientConfig.from_env()``.
        fallbacks: further targets, tried in order: chat models, or model strings (what ``ResilientChatModel``
            accepts as ``fallbacks=``).
        litellm_kwargs: keyword arguments for models built from LiteLLM ids.
        disable_inner_retries: turn each model's own SDK retries off (default), so attempts do not multiply.
        clock, registry: time source and per-target state store (tests; default: system clock, shared registry).

    Errors are our normalised ``ResilienceError``s, which are also LangChain's ``ModelError`` classes with
    ``is_retryable`` from the code, so an outer ``ModelRetryMiddleware`` does not retry what we would not.
    """

    def __init__(
        self,
        config: ResilientConfig | Mapping[str, Any] | None = None,
        *,
        fallbacks: Sequence[BaseChatModel | str | Mapping[str, Any]] = (),
        litellm_kwargs: Mapping[str, Any] | None = None,
        disable_inner_retries: bool = True,
        clock: Clock | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        if config is None:
            config = ResilientConfig.from_env()
        elif isinstance(config, Mapping):
            config = ResilientConfig.model_validate(dict(config))
        elif not isinstance(config, ResilientConfig):
            raise TypeError(f"config must be a ResilientConfig (or a dict of its fields), got {describe(config)}")
        if isinstance(fallbacks, str | bytes) or not isinstance(fallbacks, Sequence):
            raise TypeError(f"fallbacks must be a list of chat models or model strings, got {describe(fallbacks)}")
        self.config = config
        self.fallbacks: tuple[BaseChatModel | str | Mapping[str, Any], ...] = tuple(fallbacks)
        self.litellm_kwargs: dict[str, Any] = dict(litellm_kwargs or {})
        self.disable_inner_retries = disable_inner_retries
        self.tools = []
        if self.fallbacks:  # check the entries now, so a typo fails at construction, not on the first outage
            parse_targets(self.fallbacks[0], self.fallbacks[1:], shared_litellm_kwargs=self.litellm_kwargs)
        self._executor = ResilientExecutor(config, registry=registry, clock=clock)
        self._chains: dict[int, _Chain] = {}
        self._lock = threading.Lock()

    @property
    def executor(self) -> ResilientExecutor:
        """The executor the calls run under (``add_listener`` for events, ``signals_snapshot`` per target)."""
        return self._executor

    def targets_for(self, model: BaseChatModel) -> list[str]:
        """The target names a call with ``model`` as the agent's model goes through, primary first."""
        return [spec.name for spec in self._chain(model).specs]

    def _chain(self, model: BaseChatModel) -> _Chain:
        if not isinstance(model, BaseChatModel):
            raise TypeError(f"ResilienceMiddleware needs the agent's model to be a chat model, got {describe(model)}")
        chain = self._chains.get(id(model))
        if chain is not None and chain.primary is model:
            return chain
        with self._lock:
            chain = self._chains.get(id(model))
            if chain is None or chain.primary is not model:
                if len(self._chains) >= _CACHE_SIZE:
                    self._chains.clear()
                chain = self._chains[id(model)] = _Chain(self, model)
        return chain

    def _candidates(
        self, chain: _Chain, attempt: Callable[[AttemptContext], Any], request: ModelRequest[Any]
    ) -> list[Candidate[Any]]:
        return [
            Candidate(spec.name, attempt, spec.provider, spec.model_name, _cost(chain, index, request))
            for index, spec in enumerate(chain.specs)
        ]

    def wrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> ModelResponse[Any] | AIMessage:
        chain = self._chain(request.model)

        def attempt(ctx: AttemptContext) -> ModelResponse[Any]:
            try:
                return handler(request.override(model=chain.model(ctx.index)))
            except _NOT_OURS as exc:
                raise _Escape(exc) from None

        escaped: BaseException
        try:
            candidates = self._candidates(chain, attempt, request)
            return cast("ModelResponse[Any]", self._executor.run_sync(candidates, (_dispatch,)))
        except _Escape as carrier:
            escaped = carrier.error
        raise escaped

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncModelHandler
    ) -> ModelResponse[Any] | AIMessage:
        chain = self._chain(request.model)

        events = _Queue()

        async def attempt(ctx: AttemptContext) -> ModelResponse[Any]:
            if events.pending:
                await events.aflush()
            try:
                return await handler(request.override(model=chain.model(ctx.index)))
            except _NOT_OURS as exc:
                raise _Escape(exc) from None

        escaped: BaseException
        try:
            candidates = self._candidates(chain, attempt, request)
            return cast("ModelResponse[Any]", await self._executor.run(candidates, (events,)))
        except _Escape as carrier:
            escaped = carrier.error
        finally:
            if events.pending:
                await events.aflush()
        raise escaped


def _cost(chain: _Chain, index: int, request: ModelRequest[Any]) -> Callable[[], TokenCost]:
    """The call's estimated tokens on the chain's ``index``-th model (asked only under token limits)."""

    def estimate() -> TokenCost:
        model = chain.model(index)
        params = {name: getattr(model, name, None) for name in ("max_completion_tokens", "max_tokens")}
        messages = [*([request.system_message] if request.system_message is not None else []), *request.messages]
        return estimate_cost(chain.specs[index].model_name, messages, params)

    return functools.cache(estimate)
