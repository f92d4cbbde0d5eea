"""The wrapper's own LLM run: ``generate()``, ``agenerate()`` and ``stream_events(version="v3")``.

These open an LLM run for the wrapper and call its ``_generate``/``_stream``, where no chain run exists to hang
child runs on (``CallbackManagerForLLMRun`` has no ``get_child``) and calling a target's public API would nest
LLM runs and count tokens twice. So each attempt calls the target's ``_generate_with_cache`` (which keeps its
cache, rate limiter and streaming decisions) or its ``_stream`` with the wrapper's run manager: tokens are
reported once, on the wrapper's run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from ...executor import AttemptContext, Candidate, ResilientExecutor
from ._calls import Route, aclose, route_cost
from ._events import AnyRunManager, Reporter


def _chat_model(route: Route) -> BaseChatModel:
    if not isinstance(route.runnable, BaseChatModel):
        raise TypeError(f"target {route.target!r}: generate() needs a chat model, got {type(route.runnable).__name__}")
    return route.runnable


def _reporter(run_manager: AnyRunManager | None) -> Reporter | None:
    return Reporter(run_manager) if run_manager is not None else None


def _candidates(
    routes: Sequence[Route],
    messages: list[BaseMessage],
    kwargs: Mapping[str, Any],
    attempt: Callable[[Route, dict[str, Any]], Any],
) -> list[Candidate[Any]]:
    """One candidate per route; an attempt gets its route and the route's kwargs under the call's."""

    def fn(ctx: AttemptContext) -> Any:
        route = routes[ctx.index]
        return attempt(route, {**route.kwargs, **kwargs})

    return [Candidate(r.target, fn, r.provider, r.model, route_cost(r, messages, kwargs)) for r in routes]


def generate(
    executor: ResilientExecutor,
    routes: Sequence[Route],
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    def attempt(route: Route, merged: dict[str, Any]) -> ChatResult:
        return _chat_model(route)._generate_with_cache(messages, stop=stop, run_manager=run_manager, **merged)

    reporter = _reporter(run_manager)
    listeners = (reporter.report,) if reporter else ()
    result: ChatResult = executor.run_sync(_candidates(routes, messages, kwargs, attempt), listeners)
    return result


async def agenerate(
    executor: ResilientExecutor,
    routes: Sequence[Route],
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    reporter = _reporter(run_manager)

    async def attempt(route: Route, merged: dict[str, Any]) -> ChatResult:
        if reporter is not None and reporter.pending:
            await reporter.aflush()
        return await _chat_model(route)._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **merged)

    listeners = (reporter.queue,) if reporter else ()
    try:
        return await executor.run(_candidates(routes, messages, kwargs, attempt), listeners)
    finally:
        if reporter is not None and reporter.pending:
            await reporter.aflush()


def as_chunk(message: BaseMessage) -> AIMessageChunk:
    """A whole answer as one stream chunk (for targets that cannot stream), tool calls kept."""
    if isinstance(message, AIMessageChunk):
        return message
    tool_call_chunks = []
    if isinstance(message, AIMessage):
        tool_call_chunks = [
            tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc.get("id"), index=i)
            for i, tc in enumerate(message.tool_calls)
        ]
    return AIMessageChunk(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        response_metadata=message.response_metadata,
        id=message.id,
        usage_metadata=getattr(message, "usage_metadata", None),
        tool_call_chunks=tool_call_chunks,
        chunk_position="last",
    )


def _model_chunks(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
) -> Iterator[ChatGenerationChunk]:
    if type(model)._stream is BaseChatModel._stream:  # cannot stream: one chunk with the whole answer
        result = model._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        for generation in result.generations:
            yield ChatGenerationChunk(message=as_chunk(generation.message), generation_info=generation.generation_info)
        return
    if model.rate_limiter is not None:
        model.rate_limiter.acquire(blocking=True)
    yield from model._stream(messages, stop=stop, run_manager=run_manager, **kwargs)


async def _amodel_chunks(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
    reporter: Reporter | None,
) -> AsyncIterator[ChatGenerationChunk]:
    if reporter is not None and reporter.pending:
        await reporter.aflush()
    cls = type(model)
    if cls._astream is BaseChatModel._astream and cls._stream is BaseChatModel._stream:
        result = await model._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        for generation in result.generations:
            yield ChatGenerationChunk(message=as_chunk(generation.message), generation_info=generation.generation_info)
        return
    if model.rate_limiter is not None:
        await model.rate_limiter.aacquire(blocking=True)
    stream = model._astream(messages, stop=stop, run_manager=run_manager, **kwargs)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await aclose(stream)


def stream_chunks(
    executor: ResilientExecutor,
    routes: Sequence[Route],
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
) -> Iterator[ChatGenerationChunk]:
    def attempt(route: Route, merged: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        return _model_chunks(_chat_model(route), messages, stop, run_manager, merged)

    reporter = _reporter(run_manager)
    listeners = (reporter.report,) if reporter else ()
    yield from executor.stream(_candidates(routes, messages, kwargs, attempt), listeners)


async def astream_chunks(
    executor: ResilientExecutor,
    routes: Sequence[Route],
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    kwargs: Mapping[str, Any],
) -> AsyncIterator[ChatGenerationChunk]:
    reporter = _reporter(run_manager)

    def attempt(route: Route, merged: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
        return _amodel_chunks(_chat_model(route), messages, stop, run_manager, merged, reporter)

    listeners = (reporter.queue,) if reporter else ()
    candidates = _candidates(routes, messages, kwargs, attempt)
    stream: AsyncIterator[ChatGenerationChunk] = executor.astream(candidates, listeners)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await aclose(stream)
        if reporter is not None and reporter.pending:
            await reporter.aflush()
