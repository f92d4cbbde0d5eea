"""One LangChain call through the executor: a chain run, a child run per attempt, events as callbacks.

Each public call opens one chain run (``Runnable._call_with_config`` / ``_transform_stream_with_config``); each
attempt calls the target's *public* API with ``patch_config(config, callbacks=run_manager.get_child(tag))``, so
the target's own LLM run, rate limiter, cache and streaming decisions stay intact and the trace shows every
attempt under the one call. When no callback handler would see the chain run (no tracer, no callbacks), it is
not opened at all: the call goes straight to the executor, which keeps the untraced hot path close to a bare
model call.

``generate()`` and ``stream_events(version="v3")`` take another road: see ``_llm_run``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.callbacks.base import BaseCallbackManager
from langchain_core.globals import get_debug
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_callback_manager_for_config, patch_config
from langchain_core.utils.env import env_var_is_set

try:  # what CallbackManager.configure consults; private, so its absence falls back to configure itself
    from langchain_core.tracers.context import _configure_hooks, _tracing_v2_is_enabled
except ImportError:  # pragma: no cover - other langchain-core versions
    _configure_hooks = None  # type: ignore[assignment]

from ...events import EventListener
from ...executor import AttemptContext, Candidate, ResilientExecutor
from ...policies.tokens import TokenCost
from ...token_estimate import lazy_cost
from ._events import Reporter

_NO_KWARGS: Mapping[str, Any] = {}


class Route(NamedTuple):
    """A target and what to call for it: ``runnable`` with ``kwargs`` (tools bound for this target) merged in."""

    target: str
    runnable: Runnable[Any, Any]
    provider: str | None = None
    model: str | None = None
    kwargs: Mapping[str, Any] = _NO_KWARGS
    # A call-time ``timeout`` reaches the client (litellm.completion for a LiteLLM id, the SDK for a partner
    # model): how a sync attempt's timeout is enforced, a running sync call being uninterruptible otherwise.
    takes_timeout: bool = False
    # The model's own request timeout, kept when it is the shorter one.
    timeout_cap: float | None = None


def route_cost(route: Route, messages: Any, kwargs: Mapping[str, Any]) -> Callable[[], TokenCost]:
    """The call's estimated tokens for ``route``: its ``max_tokens`` from the call, the route or the model."""
    params: dict[str, Any] = {**route.kwargs, **kwargs}
    for name in ("max_completion_tokens", "max_tokens"):
        if name not in params:
            value = getattr(route.runnable, name, None)
            if isinstance(value, int):
                params[name] = value
    return lazy_cost(route.model, messages, params)


class Call:
    """What one call sends, where, and how its attempts are traced."""

    __slots__ = ("config", "executor", "input", "kwargs", "reporter", "routes", "run_manager", "streams")

    def __init__(
        self,
        executor: ResilientExecutor,
        routes: Sequence[Route],
        input: Any,
        config: RunnableConfig,
        kwargs: Mapping[str, Any],
    ) -> None:
        self.executor = executor
        self.routes = routes
        self.input = input
        self.config = config
        self.kwargs = kwargs
        self.run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun | None = None
        self.reporter: Reporter | None = None
        self.streams: list[Any] = []

    def attach(self, run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun) -> None:
        self.run_manager = run_manager
        self.reporter = Reporter(run_manager)

    def candidates(self, fn: Callable[[AttemptContext], Any]) -> list[Candidate[Any]]:
        return [
            Candidate(r.target, fn, r.provider, r.model, route_cost(r, self.input, self.kwargs)) for r in self.routes
        ]

    def listeners(self, *, is_async: bool) -> tuple[EventListener, ...]:
        reporter = self.reporter
        if reporter is None:
            return ()
        return (reporter.queue,) if is_async else (reporter.report,)

    def child_config(self, ctx: AttemptContext) -> RunnableConfig:
        """The attempt's config: a child of the chain run tagged ``retry:attempt:N`` (and its fallback index)."""
        rm = self.run_manager
        if rm is None:
            return self.config
        child = rm.get_child(f"retry:attempt:{ctx.attempt}")
        if ctx.index:
            child.add_tags([f"fallback:index:{ctx.index}", f"fallback:model:{ctx.target}"], inherit=False)
        child.add_metadata(
            {
                "resilience_target": ctx.target,
                "resilience_attempt": ctx.attempt,
                "resilience_fallback_index": ctx.index,
            },
            inherit=False,
        )
        return patch_config(self.config, callbacks=child)

    def _target(self, ctx: AttemptContext) -> tuple[Runnable[Any, Any], Mapping[str, Any]]:
        route = self.routes[ctx.index]
        kwargs = {**route.kwargs, **self.kwargs} if route.kwargs else self.kwargs
        return route.runnable, kwargs

    def _sync_target(self, ctx: AttemptContext) -> tuple[Runnable[Any, Any], Mapping[str, Any]]:
        runnable, kwargs = self._target(ctx)
        route = self.routes[ctx.index]
        if ctx.timeout is not None and route.takes_timeout:
            cap = route.timeout_cap
            kwargs = {**kwargs, "timeout": ctx.timeout if cap is None else min(ctx.timeout, cap)}
        return runnable, kwargs

    def invoke(self, ctx: AttemptContext) -> Any:
        runnable, kwargs = self._sync_target(ctx)
        return runnable.invoke(self.input, self.child_config(ctx), **kwargs)

    async def ainvoke(self, ctx: AttemptContext) -> Any:
        if self.reporter is not None and self.reporter.pending:
            await self.reporter.aflush()
        runnable, kwargs = self._target(ctx)
        return await runnable.ainvoke(self.input, self.child_config(ctx), **kwargs)

    def stream(self, ctx: AttemptContext) -> Iterator[Any]:
        runnable, kwargs = self._sync_target(ctx)
        return runnable.stream(self.input, self.child_config(ctx), **kwargs)

    def astream(self, ctx: AttemptContext) -> AsyncIterator[Any]:
        runnable, kwargs = self._target(ctx)
        stream = runnable.astream(self.input, self.child_config(ctx), **kwargs)
        return stream if self.reporter is None else self._flush_first(stream)

    async def _flush_first(self, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            if self.reporter is not None and self.reporter.pending:
                await self.reporter.aflush()
            async for chunk in stream:
                yield chunk
        finally:
            await aclose(stream)

    def open_stream(self) -> Iterator[Any]:
        stream = self.executor.stream(self.candidates(self.stream), self.listeners(is_async=False))
        self.streams.append(stream)
        return stream

    def open_astream(self) -> AsyncIterator[Any]:
        stream = self.executor.astream(self.candidates(self.astream), self.listeners(is_async=True))
        self.streams.append(stream)
        return stream

    def close_streams(self) -> None:
        """Release every permit now, whatever the consumer did (break, close, exception)."""
        for stream in self.streams:
            close(stream)

    async def aclose_streams(self) -> None:
        for stream in self.streams:
            await aclose(stream)
        if self.reporter is not None and self.reporter.pending:
            await self.reporter.aflush()


def close(stream: object) -> None:
    """Close a generator now (its ``finally`` gives back the permit); other iterators are left alone."""
    closer = getattr(stream, "close", None)
    if closer is not None:
        closer()


async def aclose(stream: object) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        await closer()


def unobserved(config: RunnableConfig) -> bool:
    """Whether no callback handler would see a run started with ``config``: then no chain run is opened.

    Answers from the same sources ``CallbackManager.configure`` reads (callbacks passed down, LangSmith tracing,
    debug mode, configure hooks such as ``collect_runs``) but without building a manager, which costs more than
    the rest of the wrapper. When in doubt (an unfamiliar langchain-core) it builds the manager and looks.
    """
    callbacks = config.get("callbacks")
    if callbacks and (not isinstance(callbacks, BaseCallbackManager) or callbacks.handlers):
        return False
    if _configure_hooks is None:
        return not get_callback_manager_for_config(config).handlers
    if _tracing_v2_is_enabled() or get_debug():
        return False
    for var, _inheritable, handler_class, env_var in _configure_hooks:
        if var.get() is not None or (env_var is not None and handler_class is not None and env_var_is_set(env_var)):
            return False
    return True


def _untraced(config: RunnableConfig) -> RunnableConfig:
    # What patch_config would drop for a child: the run id and name belong to the (unopened) chain run.
    config.pop("run_id", None)
    config.pop("run_name", None)
    return config


def _fast_signature(fn: Callable[..., Any]) -> Callable[..., Any]:
    # LangChain inspects these functions on every call to see whether they take run_manager/config; a stored
    # signature makes that a lookup instead of a parse.
    fn.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return fn


@_fast_signature
def _traced_invoke(input: Any, run_manager: CallbackManagerForChainRun, *, call: Call) -> Any:
    call.attach(run_manager)
    return call.executor.run_sync(call.candidates(call.invoke), call.listeners(is_async=False))


@_fast_signature
async def _traced_ainvoke(input: Any, run_manager: AsyncCallbackManagerForChainRun, *, call: Call) -> Any:
    call.attach(run_manager)
    try:
        return await call.executor.run(call.candidates(call.ainvoke), call.listeners(is_async=True))
    finally:
        if call.reporter is not None and call.reporter.pending:
            await call.reporter.aflush()


@_fast_signature
def _traced_stream(inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, *, call: Call) -> Iterator[Any]:
    call.attach(run_manager)
    yield from call.open_stream()


@_fast_signature
async def _traced_astream(
    inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun, *, call: Call
) -> AsyncIterator[Any]:
    call.attach(run_manager)
    try:
        async for chunk in call.open_astream():
            yield chunk
    finally:
        await call.aclose_streams()


def _new_call(
    executor: ResilientExecutor, routes: Sequence[Route], input: Any, config: RunnableConfig, kwargs: Mapping[str, Any]
) -> tuple[Call, bool]:
    """The call, and whether it opens a chain run: not when no handler would see one (the config then loses the
    run's id and name, which belong to that unopened run)."""
    if unobserved(config):
        return Call(executor, routes, input, _untraced(config), kwargs), False
    return Call(executor, routes, input, config, kwargs), True


def invoke(
    owner: Runnable[Any, Any],
    executor: ResilientExecutor,
    routes: Sequence[Route],
    input: Any,
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
) -> Any:
    """``config`` must come from ``ensure_config`` (a fresh dict this call owns)."""
    call, traced = _new_call(executor, routes, input, config, kwargs)
    if not traced:
        return executor.run_sync(call.candidates(call.invoke))
    return owner._call_with_config(_traced_invoke, input, config, call=call)


async def ainvoke(
    owner: Runnable[Any, Any],
    executor: ResilientExecutor,
    routes: Sequence[Route],
    input: Any,
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
) -> Any:
    call, traced = _new_call(executor, routes, input, config, kwargs)
    if not traced:
        return await executor.run(call.candidates(call.ainvoke))
    return await owner._acall_with_config(_traced_ainvoke, input, config, call=call)


def stream(
    owner: Runnable[Any, Any],
    executor: ResilientExecutor,
    routes: Sequence[Route],
    input: Any,
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
) -> Iterator[Any]:
    """A generator: nothing is sent (and no permit taken) until it is first iterated."""
    call, traced = _new_call(executor, routes, input, config, kwargs)
    if not traced:
        yield from executor.stream(call.candidates(call.stream))
        return
    try:
        yield from owner._transform_stream_with_config(iter((input,)), _traced_stream, config, call=call)
    finally:
        call.close_streams()


async def astream(
    owner: Runnable[Any, Any],
    executor: ResilientExecutor,
    routes: Sequence[Route],
    input: Any,
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
) -> AsyncIterator[Any]:
    call, traced = _new_call(executor, routes, input, config, kwargs)
    if not traced:
        stream = executor.astream(call.candidates(call.astream))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await aclose(stream)
        return
    run = owner._atransform_stream_with_config(_one(input), _traced_astream, config, call=call)
    try:
        async for chunk in run:
            yield chunk
    finally:
        await aclose(run)
        await call.aclose_streams()


async def _one(value: Any) -> AsyncIterator[Any]:
    yield value
