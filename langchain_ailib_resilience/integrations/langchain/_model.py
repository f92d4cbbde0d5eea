"""``ResilientChatModel``: a ``BaseChatModel`` whose calls run through the ``ResilientExecutor``.

The public entry points (invoke, ainvoke, stream, astream; batch and abatch through them) open one chain run per
call (``_calls``); ``generate``, ``agenerate`` and ``stream_events(version="v3")`` come through
``_generate``/``_stream`` (``_llm_run``). Targets are parsed at construction and built on first use
(``_targets``).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Required, Self, TypedDict, Unpack, cast

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun, Callbacks
from langchain_core.callbacks.base import BaseCallbackManager
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, SkipValidation, model_validator

from ...clock import Clock
from ...config import ResilientConfig, RetryConfig
from ...errors.redact import redact
from ...executor import ResilientExecutor
from ...registry import Registry
from ...signals import SignalsSnapshot
from . import _calls as calls
from . import _llm_run as llm_run
from ._calls import Route
from ._partners import call_timeout, needs_strict_tools
from ._runnable import ResilientRunnable
from ._targets import TargetSpec, build_model, combined_profile, describe, parse_targets

ModelSpec = BaseChatModel | str | Mapping[str, Any]
"""A chat model, a LiteLLM model id, or ``{"model": either, "target": "name", **chat_litellm_kwargs}``."""


class ResilientChatModelArgs(TypedDict, total=False):
    """The keyword arguments of ``ResilientChatModel``, typed so a checker catches a misspelled one (``modle=``).

    The fields below and LangChain's standard ``BaseChatModel`` fields; a unit test keeps it equal to
    ``ResilientChatModel.model_fields``.
    """

    model: Required[ModelSpec]
    fallbacks: Sequence[ModelSpec] | None
    config: ResilientConfig | Mapping[str, Any] | None
    litellm_kwargs: Mapping[str, Any]
    disable_inner_retries: bool
    temperature: float | None
    max_tokens: int | None
    timeout: float | None
    stop: list[str] | None
    api_key: SecretStr | str | None
    max_retries: int | None
    streaming: bool
    clock: Clock | None
    registry: Registry | None
    name: str | None
    cache: BaseCache | bool | None
    verbose: bool
    callbacks: Callbacks
    tags: list[str] | None
    metadata: dict[str, Any] | None
    custom_get_token_ids: Callable[[str], list[int]] | None
    rate_limiter: BaseRateLimiter | None
    disable_streaming: bool | Literal["tool_calling"]
    output_version: str | None
    profile: ModelProfile | None


_TOOL_KWARGS = "bind_tools_kwargs"  # extra bind_tools() options, replayed on each target's own bind_tools
_TOOL_CACHE_SIZE = 32
_resolve_lock = threading.Lock()


class ResilientChatModel(BaseChatModel):
    """A chat model that retries, rate-limits, circuit-breaks and falls back across models.

    Example::

        model = ResilientChatModel(
            ResilientConfig(retry=RetryConfig(max_retries=3)),
            model="openai/gpt-4o",                           # or any LangChain chat model instance
            fallbacks=["anthropic/claude-3-5-sonnet", ChatOllama(model="llama3")],
        )
        model.invoke("Hello")                # also ainvoke, batch, stream, astream, bind_tools, ...
        model.signals_snapshot().circuit_state

    Args:
        model: the primary target: a chat model, a LiteLLM model id, or a mapping (``ModelSpec``).
        fallbacks: further targets, tried in order on fallbackable errors (rate limits, overload, open circuit...).
        config: the ``ResilientConfig`` (also accepted positionally first); default ``ResilientConfig.from_env()``.
        litellm_kwargs: keyword arguments for every ``ChatLiteLLM`` built from a model id (``api_base``...).
        disable_inner_retries: turn wrapped models' own retries off (default), so attempts do not multiply.
        clock, registry: time source and per-target state store (tests; default: system clock, shared registry).

    LangChain's standard parameters are accepted deliberately: ``temperature``, ``max_tokens``, ``timeout``
    (as ``request_timeout``), ``api_key`` and ``streaming`` are passed to models built from LiteLLM ids (chat
    model instances keep their own settings); ``stop`` is the default stop list of every call; ``max_retries``
    sets ``config.retry.max_retries``. Any other keyword is a ``TypeError``.

    Errors are normalised ``ResilienceError`` subclasses (``RetryableError``, ``FallbackableError`` markers), so
    LangChain's ``with_fallbacks(exceptions_to_handle=(FallbackableError,))`` works on top.
    """

    model: Annotated[ModelSpec, SkipValidation]
    fallbacks: Annotated[list[ModelSpec], SkipValidation] = Field(default_factory=list)
    config: ResilientConfig = Field(default_factory=ResilientConfig.from_env)
    litellm_kwargs: dict[str, Any] = Field(default_factory=dict)
    disable_inner_retries: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = None
    api_key: SecretStr | None = None
    max_retries: int | None = Field(default=None, ge=0, le=100)
    streaming: bool = False
    clock: Annotated[Clock | None, SkipValidation] = Field(default=None, exclude=True)
    registry: Annotated[Registry | None, SkipValidation] = Field(default=None, exclude=True)

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    _specs: tuple[TargetSpec, ...] = PrivateAttr(default=())
    _executor: ResilientExecutor = PrivateAttr()
    _routes: tuple[Route, ...] | None = PrivateAttr(default=None)
    _tool_routes: dict[int, tuple[Any, Any, Any, tuple[Route, ...]]] = PrivateAttr(default_factory=dict)

    def __init__(self, config: ResilientConfig | None = None, /, **kwargs: Unpack[ResilientChatModelArgs]) -> None:
        if config is not None:
            if "config" in kwargs:
                raise TypeError("ResilientChatModel got config both positionally and as config=")
            kwargs["config"] = config
        super().__init__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _check_arguments(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(
                f"ResilientChatModel got unexpected keyword argument(s) {unknown}; settings for models built from "
                "LiteLLM ids go in litellm_kwargs={...}, settings of a chat model instance on the instance itself"
            )
        if "model" not in data:
            raise TypeError("ResilientChatModel needs model=: a chat model or a LiteLLM model id like 'openai/gpt-4o'")
        config = data.get("config")
        if config is None:
            data.pop("config", None)
        elif not isinstance(config, ResilientConfig):
            if not isinstance(config, Mapping):
                raise TypeError(f"config must be a ResilientConfig (or a dict of its fields), got {describe(config)}")
            data["config"] = ResilientConfig.model_validate(dict(config))
        if data.get("fallbacks") is None:
            data.pop("fallbacks", None)
        return data

    @model_validator(mode="after")
    def _prepare(self) -> Self:
        if self.max_retries is not None and self.max_retries != self.config.retry.max_retries:
            retry = RetryConfig.model_validate({**self.config.retry.model_dump(), "max_retries": self.max_retries})
            self.config = self.config.model_copy(update={"retry": retry})
        standard = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "api_key": self.api_key,
            "streaming": True if self.streaming else None,
        }
        self._specs = parse_targets(
            self.model, self.fallbacks, shared_litellm_kwargs=self.litellm_kwargs, standard=standard
        )
        self._executor = ResilientExecutor(self.config, registry=self.registry, clock=self.clock)
        self._executor.keep_private(spec.name for spec in self._specs if spec.private)
        if self.profile is None:  # resolved before the targets were parsed: again, with them
            self.profile = self._resolve_model_profile()
        return self

    # --- identity -------------------------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "resilient-chat-model"

    # A wrapped model's repr shows its base URL as given (``ChatOpenAI(openai_api_base='http://u:key@...')``):
    # ours passes it through redact, like every message we produce.
    def __repr__(self) -> str:
        return redact(super().__repr__())

    def __str__(self) -> str:
        return redact(super().__str__())

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"targets": self.targets}

    @property
    def targets(self) -> list[str]:
        """The target names, primary first: the keys of breaker and limiter state (``"openai/gpt-4o"``)."""
        return [spec.name for spec in self._specs]

    @property
    def executor(self) -> ResilientExecutor:
        return self._executor

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The primary target's provider and model (a per-call ``model=`` wins), as LangSmith expects."""
        primary = self._specs[0]
        override = kwargs.get("model")
        params = LangSmithParams(
            ls_provider=primary.provider or primary.name,
            ls_model_name=override if isinstance(override, str) else primary.model_name or primary.name,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, int | float):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        stop = stop if stop is not None else self.stop
        if stop:
            params["ls_stop"] = stop
        return params

    @property
    def model_name(self) -> str:
        """The primary's model name (``"gpt-4o"``): what LangChain's agent reads to guess capabilities.

        ``create_agent`` falls back to ``model_name``, then ``model``, when a model has no profile; without this
        it would read our ``model`` field (a chat model or a mapping) and crash calling ``.lower()`` on it.
        """
        primary = self._specs[0] if self._specs else None
        return (primary.model_name or primary.name) if primary is not None else ""

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What every target can do: a capability is claimed only if all targets claim it (``combined_profile``).

        A fallback chain is only as capable as its least capable target: ``create_agent`` picks its structured
        output strategy from this, and a fallback that cannot do what the primary promised would fail there.
        """
        return combined_profile([spec.source for spec in self._specs]) if self._specs else None

    def signals_snapshot(self) -> SignalsSnapshot:
        """The primary's ``circuit_state``, ``current_inflight``, ``rate_remaining``, and an entry per target."""
        executor = self._executor
        for spec in self._specs:
            executor.state(spec.name)
        return executor.signals_snapshot(self._specs[0].name)

    # --- targets --------------------------------------------------------------------------------------------

    def _standard_params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "request_timeout": self.timeout,
            "api_key": self.api_key.get_secret_value() if self.api_key is not None else None,
            "streaming": True if self.streaming else None,
        }

    def _base_routes(self) -> tuple[Route, ...]:
        """The targets' chat models, built on first use (LiteLLM ids become ``ChatLiteLLM``) and then kept."""
        routes = self._routes
        if routes is None:
            with _resolve_lock:
                routes = self._routes
                if routes is None:
                    version = self.output_version if "output_version" in self.model_fields_set else None
                    standard = self._standard_params()
                    routes = tuple(
                        _route(
                            spec,
                            build_model(
                                spec,
                                own_retries_off=self.disable_inner_retries,
                                standard=standard,
                                output_version=version,
                            ),
                        )
                        for spec in self._specs
                    )
                    self._routes = routes
        return routes

    def _routes_for(self, kwargs: dict[str, Any]) -> tuple[Route, ...]:
        """The routes for one call; tools bound with ``bind_tools`` are re-bound on each target, in its format."""
        if "tools" not in kwargs:
            return self._base_routes()
        tools = kwargs.pop("tools")
        tool_choice = kwargs.pop("tool_choice", None)
        options = kwargs.pop(_TOOL_KWARGS, None)
        cached = self._tool_routes.get(id(tools))
        if cached is not None and cached[0] is tools and cached[1] == tool_choice and cached[2] is options:
            return cached[3]
        routes = tuple(self._bind_tools_on(route, tools, tool_choice, options) for route in self._base_routes())
        if len(self._tool_routes) >= _TOOL_CACHE_SIZE:
            self._tool_routes.clear()
        self._tool_routes[id(tools)] = (tools, tool_choice, options, routes)
        return routes

    @staticmethod
    def _bind_tools_on(route: Route, tools: Any, tool_choice: Any, options: Mapping[str, Any] | None) -> Route:
        model = cast("BaseChatModel", route.runnable)
        extra = dict(options or {})
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        if "response_format" in extra and "strict" not in extra and needs_strict_tools(model):
            # create_agent's ProviderStrategy binds tools with response_format, and sets strict=True itself only
            # when the agent's model is an OpenAI one; langchain-openai refuses non-strict tools beside it.
            extra["strict"] = True
        if extra.get("strict"):
            # Bare function schemas: a tool already in OpenAI's {"type": "function"} shape keeps its (non-strict)
            # schema through the target's convert_to_openai_tool, which then ignores strict=True.
            tools = [_function_schema(tool) for tool in tools]
        try:
            bound = model.bind_tools(tools, **extra)
        except NotImplementedError as exc:
            raise NotImplementedError(
                f"target {route.target!r} ({type(model).__name__}) does not support tool calling"
            ) from exc
        if isinstance(bound, RunnableBinding) and isinstance(bound.bound, BaseChatModel) and not bound.config:
            # Call the chat model itself with the bound kwargs: one Runnable layer less per attempt.
            return route._replace(runnable=bound.bound, kwargs=dict(bound.kwargs))
        return route._replace(runnable=bound)

    # --- calls ----------------------------------------------------------------------------------------------

    def _own_config(self, config: RunnableConfig | None) -> RunnableConfig:
        """``ensure_config`` plus this model's own tags, metadata and callbacks (the chain run does not add them)."""
        config = ensure_config(config)
        if self.tags:
            config["tags"] = [*config.get("tags", []), *(t for t in self.tags if t not in config.get("tags", []))]
        if self.metadata:
            config["metadata"] = {**config.get("metadata", {}), **self.metadata}
        if self.callbacks:
            config["callbacks"] = _merge_callbacks(config.get("callbacks"), self.callbacks)
        return config

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else (self.stop or None)

    def _call_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        stop = self._stop(stop)
        if stop is not None:
            kwargs["stop"] = stop
        return kwargs

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        routes = self._routes_for(kwargs)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(blocking=True)
        result = calls.invoke(
            self, self._executor, routes, input, self._own_config(config), self._call_kwargs(stop, kwargs)
        )
        return cast("AIMessage", result)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        routes = self._routes_for(kwargs)
        if self.rate_limiter is not None:
            await self.rate_limiter.aacquire(blocking=True)
        result = await calls.ainvoke(
            self, self._executor, routes, input, self._own_config(config), self._call_kwargs(stop, kwargs)
        )
        return cast("AIMessage", result)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        routes = self._routes_for(kwargs)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(blocking=True)
        yield from calls.stream(
            self, self._executor, routes, input, self._own_config(config), self._call_kwargs(stop, kwargs)
        )

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        routes = self._routes_for(kwargs)
        if self.rate_limiter is not None:
            await self.rate_limiter.aacquire(blocking=True)
        stream = calls.astream(
            self, self._executor, routes, input, self._own_config(config), self._call_kwargs(stop, kwargs)
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await calls.aclose(stream)

    # generate(), agenerate() and stream_events(version="v3") open an LLM run for this model and come here.

    def _should_stream(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        # Let each target decide whether to stream (it sees this run's handlers through the run manager).
        return False

    def _should_use_protocol_streaming(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        return False

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        routes = self._routes_for(kwargs)
        return llm_run.generate(self._executor, routes, messages, self._stop(stop), run_manager, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        routes = self._routes_for(kwargs)
        return await llm_run.agenerate(self._executor, routes, messages, self._stop(stop), run_manager, kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        routes = self._routes_for(kwargs)
        yield from llm_run.stream_chunks(self._executor, routes, messages, self._stop(stop), run_manager, kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        routes = self._routes_for(kwargs)
        stream = llm_run.astream_chunks(self._executor, routes, messages, self._stop(stop), run_manager, kwargs)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await calls.aclose(stream)

    # --- tools and structured output ------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[builtins.dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | builtins.dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (OpenAI format); at call time each target binds them again with its own ``bind_tools``."""
        bound: dict[str, Any] = {"tools": [convert_to_openai_tool(tool) for tool in tools]}
        if tool_choice is not None:
            bound["tool_choice"] = tool_choice
        if kwargs:
            bound[_TOOL_KWARGS] = kwargs
        return self.bind(**bound)

    def with_structured_output(
        self,
        schema: builtins.dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, builtins.dict[str, Any] | BaseModel]:
        """Each target's own ``with_structured_output`` (``method``, ``strict``, ``include_raw`` kept), routed."""
        routes = []
        for route in self._base_routes():
            model = cast("BaseChatModel", route.runnable)
            try:
                structured = model.with_structured_output(schema, include_raw=include_raw, **kwargs)
            except NotImplementedError as exc:
                raise NotImplementedError(
                    f"target {route.target!r} ({type(model).__name__}) does not support structured output"
                ) from exc
            routes.append(route._replace(runnable=structured))
        return ResilientRunnable(routes, self._executor, name=f"{self.get_name()}.with_structured_output")


def _route(spec: TargetSpec, model: BaseChatModel) -> Route:
    if isinstance(spec.source, str):
        return Route(spec.name, model, spec.provider, spec.model_name, takes_timeout=True)
    takes, cap = call_timeout(model)
    return Route(spec.name, model, spec.provider, spec.model_name, takes_timeout=takes, timeout_cap=cap)


def _function_schema(tool: Any) -> Any:
    if isinstance(tool, Mapping) and tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
        return dict(tool["function"])
    return tool


def _merge_callbacks(given: Any, own: Any) -> Any:
    """Callbacks passed at call time plus the model's own, whether each is a list or a manager."""
    if given is None:
        return own
    if isinstance(given, list) and isinstance(own, list):
        return [*given, *own]
    if isinstance(given, BaseCallbackManager):
        manager = given.copy()
        for handler in own.handlers if isinstance(own, BaseCallbackManager) else own:
            manager.add_handler(handler, inherit=True)
        return manager
    manager = cast("BaseCallbackManager", own).copy()
    for handler in given:
        manager.add_handler(handler, inherit=True)
    return manager
