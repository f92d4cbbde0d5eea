"""Chat models for testing resilient apps: a scripted fake and a chaos wrapper.

``ScriptedChatModel`` answers from a script (text, messages with tool calls, exceptions to raise, failures in
the middle of a stream), implements ``bind_tools`` (so ``with_structured_output`` works too) and records every
call. ``ChaosChatModel`` wraps any chat model and injects faults, latency and mid-stream failures at a rate,
like Polly's Simmy. Both run on an injectable clock, so tests with latency never sleep for real.
"""

from __future__ import annotations

import copy
import random
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SkipValidation, model_validator

from ..clock import SYSTEM_CLOCK, Clock
from ..errors.exceptions import OverloadedError, ProviderTimeoutError, RateLimitedError, ServerError


@dataclass(frozen=True)
class MidStreamFailure:
    """A script step that streams ``after_chunks`` chunks of ``content``, then raises ``error``."""

    content: str
    error: BaseException
    after_chunks: int = 1


ScriptStep = str | BaseMessage | BaseException | MidStreamFailure | Callable[[list[BaseMessage], dict[str, Any]], Any]
"""Text, a message (tool calls kept), an exception to raise, a mid-stream failure, or ``f(messages, kwargs)``."""


@dataclass
class ScriptedCall:
    """One call the scripted model received: the messages, the call's kwargs (stop, tools...), and how."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    streamed: bool


@dataclass
class Script:
    """Steps and the record of calls, shared by a model and its copies (a wrapper may copy the model)."""

    steps: list[ScriptStep]
    cycle: bool = False
    position: int = 0
    calls: list[ScriptedCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next(self, messages: list[BaseMessage], kwargs: dict[str, Any], streamed: bool) -> Any:
        with self.lock:
            self.calls.append(ScriptedCall(list(messages), dict(kwargs), streamed))
            if self.position >= len(self.steps):
                if not self.cycle or not self.steps:
                    raise IndexError(f"script exhausted after {len(self.calls) - 1} calls ({len(self.steps)} steps)")
                self.position = 0
            step = self.steps[self.position]
            self.position += 1
        if callable(step) and not isinstance(step, BaseMessage | BaseException | MidStreamFailure):
            step = step(list(messages), dict(kwargs))
        return step


def _fresh(error: BaseException) -> BaseException:
    """A copy of ``error`` to raise, so tracebacks do not pile up on one object; the error itself if it can't."""
    try:
        return copy.copy(error)
    except Exception:  # e.g. SDK errors whose keyword-only constructor arguments copy cannot replay
        return error.with_traceback(None)


def _raise_copy(error: BaseException) -> None:
    raise _fresh(error)


def _as_message(step: Any) -> AIMessage:
    if isinstance(step, str):
        return AIMessage(content=step)
    if isinstance(step, AIMessage):
        return step.model_copy(deep=True)
    raise TypeError(f"a script step must be text, an AIMessage, an exception or a MidStreamFailure, got {step!r}")


def _apply_stop(text: str, stop: list[str] | None) -> str:
    for word in stop or ():
        cut = text.find(word)
        if cut >= 0:
            text = text[:cut]
    return text


def _chunks(message: AIMessage) -> list[AIMessageChunk]:
    """Split an answer into word chunks; tool calls, usage and metadata ride on the last one."""
    text = message.content if isinstance(message.content, str) else message.text
    pieces = re.findall(r"\S+\s*|\s+", text) or [""]
    chunks = [AIMessageChunk(content=piece, id=message.id) for piece in pieces[:-1]]
    tool_call_chunks = [
        tool_call_chunk(name=tc["name"], args=_json(tc["args"]), id=tc.get("id"), index=i)
        for i, tc in enumerate(message.tool_calls)
    ]
    last = AIMessageChunk(
        content=pieces[-1],
        id=message.id,
        tool_call_chunks=tool_call_chunks,
        usage_metadata=message.usage_metadata,
        response_metadata=dict(message.response_metadata),
        chunk_position="last",
    )
    return [*chunks, last]


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script, for tests.

    Example::

        model = ScriptedChatModel(responses=[RateLimitedError("slow down", retry_after=1), "Hello!"])
        model.invoke("hi")          # raises the 429 first: wrap it in ResilientChatModel to see it retried
        model.calls                 # every call received, with its kwargs (stop, tools, tool_choice...)

    ``max_retries`` > 0 makes the model retry errors itself, as SDK clients do, consuming script steps: use it
    to check that a wrapper turns inner retries off. ``latency`` (seconds, on ``clock``) delays every answer.
    """

    responses: Annotated[Sequence[ScriptStep], SkipValidation] = Field(default_factory=list)
    cycle: bool = False
    provider: str = "scripted"
    model_name: str = "scripted-model"
    max_retries: int = Field(default=0, ge=0)
    latency: float = Field(default=0.0, ge=0.0)
    clock: Annotated[Clock | None, SkipValidation] = Field(default=None, exclude=True)
    script: Annotated[Script | None, SkipValidation] = None  # shared by copies: one record of calls

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _make_script(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("script") is None:
            data["script"] = Script(list(data.get("responses") or []), cycle=bool(data.get("cycle", False)))
        return data

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"provider": self.provider, "model_name": self.model_name}

    @property
    def calls(self) -> list[ScriptedCall]:
        assert self.script is not None
        return self.script.calls

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider=self.provider, ls_model_name=self.model_name, ls_model_type="chat")
        if stop:
            params["ls_stop"] = stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        bound: dict[str, Any] = {"tools": [convert_to_openai_tool(t) for t in tools], **kwargs}
        if tool_choice is not None:
            bound["tool_choice"] = tool_choice
        return self.bind(**bound)

    # --- playing the script -----------------------------------------------------------------------------------

    def _step(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], streamed: bool) -> Any:
        assert self.script is not None
        call_kwargs = {"stop": stop, **kwargs} if stop is not None else kwargs
        retries_left = self.max_retries
        while True:
            step = self.script.next(messages, call_kwargs, streamed)
            if isinstance(step, BaseException) and retries_left > 0:
                retries_left -= 1  # an SDK-style inner retry: invisible to anything wrapping this model
                continue
            return step

    def _answer(self, step: Any, stop: list[str] | None) -> AIMessage:
        if isinstance(step, BaseException):
            _raise_copy(step)
        if isinstance(step, MidStreamFailure):
            _raise_copy(step.error)
        message = _as_message(step)
        if stop and isinstance(message.content, str):
            message.content = _apply_stop(message.content, stop)
        return message

    def _stream_step(
        self, step: Any, stop: list[str] | None, run_manager: CallbackManagerForLLMRun | None
    ) -> Iterator[ChatGenerationChunk]:
        if isinstance(step, MidStreamFailure):
            for piece in _chunks(AIMessage(content=step.content))[: step.after_chunks]:
                piece.chunk_position = None
                piece.tool_call_chunks = []
                yield ChatGenerationChunk(message=piece)
            _raise_copy(step.error)
        for piece in _chunks(self._answer(step, stop)):
            chunk = ChatGenerationChunk(message=piece)
            if run_manager is not None:
                run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        (self.clock or SYSTEM_CLOCK).sleep(self.latency)
        message = self._answer(self._step(messages, stop, kwargs, streamed=False), stop)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await (self.clock or SYSTEM_CLOCK).asleep(self.latency)
        message = self._answer(self._step(messages, stop, kwargs, streamed=False), stop)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        (self.clock or SYSTEM_CLOCK).sleep(self.latency)
        yield from self._stream_step(self._step(messages, stop, kwargs, streamed=True), stop, run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await (self.clock or SYSTEM_CLOCK).asleep(self.latency)
        for chunk in self._stream_step(self._step(messages, stop, kwargs, streamed=True), stop, None):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


# --- chaos ----------------------------------------------------------------------------------------------------


def default_faults() -> list[Callable[[], BaseException]]:
    """Provider-like transient failures: a 500, a 503, a 429 and a timeout (all retryable and fallbackable)."""
    return [
        lambda: ServerError("chaos: injected server error", status_code=500, provider="chaos"),
        lambda: OverloadedError("chaos: injected overload", status_code=503, provider="chaos"),
        lambda: RateLimitedError("chaos: injected rate limit", status_code=429, provider="chaos"),
        lambda: ProviderTimeoutError("chaos: injected timeout", provider="chaos"),
    ]


@dataclass
class ChaosStats:
    """What the chaos model did, shared with its copies."""

    calls: int = 0
    faults: int = 0
    mid_stream_faults: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ChaosChatModel(BaseChatModel):
    """Wraps a chat model and injects faults, latency and mid-stream failures: fault injection for your tests.

    Example::

        chaotic = ChaosChatModel(inner=ChatOpenAI(...), fault_rate=0.3, seed=7)
        model = ResilientChatModel(model=chaotic, fallbacks=[backup])   # does the app survive 30 % failures?

    Args:
        inner: the chat model answering when no fault is injected.
        fault_rate: share of calls failing before any output (0..1).
        faults: exceptions (or zero-argument factories of them) to pick from; default ``default_faults()``.
        mid_stream_fault_rate: share of streams failing after their first chunk.
        latency: seconds added before every answer, on ``clock``.
        enabled: the switch: ``False`` passes every call straight through.
        seed: makes the fault sequence reproducible.
    """

    inner: BaseChatModel
    fault_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    faults: Annotated[Sequence[BaseException | Callable[[], BaseException]], SkipValidation] = Field(
        default_factory=default_faults
    )
    mid_stream_fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency: float = Field(default=0.0, ge=0.0)
    enabled: bool = True
    seed: int | None = None
    clock: Annotated[Clock | None, SkipValidation] = Field(default=None, exclude=True)

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _rng: random.Random = PrivateAttr()
    _stats: ChaosStats = PrivateAttr(default_factory=ChaosStats)

    @model_validator(mode="after")
    def _seed(self) -> ChaosChatModel:
        if not self.faults:
            raise ValueError("faults must name at least one exception")
        self._rng = random.Random(self.seed)
        return self

    @property
    def _llm_type(self) -> str:
        return "chaos-chat-model"

    @property
    def stats(self) -> ChaosStats:
        return self._stats

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.inner._get_ls_params(stop=stop, **kwargs)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.inner.bind_tools(tools, **kwargs)  # the inner model's own tool format
        return self.bind(**getattr(bound, "kwargs", {}))

    def _roll(self, rate: float) -> bool:
        with self._stats.lock:
            return self.enabled and rate > 0 and self._rng.random() < rate

    def _fault(self) -> BaseException:
        with self._stats.lock:
            pick = self._rng.choice(list(self.faults))
        return pick() if not isinstance(pick, BaseException) else _fresh(pick)

    def _before_call(self) -> None:
        with self._stats.lock:
            self._stats.calls += 1
        if self._roll(self.fault_rate):
            with self._stats.lock:
                self._stats.faults += 1
            raise self._fault()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        (self.clock or SYSTEM_CLOCK).sleep(self.latency if self.enabled else 0.0)
        self._before_call()
        return self.inner._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await (self.clock or SYSTEM_CLOCK).asleep(self.latency if self.enabled else 0.0)
        self._before_call()
        return await self.inner._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        (self.clock or SYSTEM_CLOCK).sleep(self.latency if self.enabled else 0.0)
        self._before_call()
        break_after_first = self._roll(self.mid_stream_fault_rate)
        if type(self.inner)._stream is BaseChatModel._stream:
            result = self.inner._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
            chunks: Iterator[ChatGenerationChunk] = iter(
                ChatGenerationChunk(message=piece) for piece in _chunks(_as_message(result.generations[0].message))
            )
        else:
            chunks = self.inner._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        for index, chunk in enumerate(chunks):
            if index == 1 and break_after_first:
                with self._stats.lock:
                    self._stats.mid_stream_faults += 1
                raise self._fault()
            yield chunk


__all__ = [
    "ChaosChatModel",
    "ChaosStats",
    "MidStreamFailure",
    "Script",
    "ScriptStep",
    "ScriptedCall",
    "ScriptedChatModel",
    "default_faults",
]
