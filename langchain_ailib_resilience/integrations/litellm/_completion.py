"""``resilient_completion`` / ``resilient_acompletion``: the executor around ``litellm.completion``/``acompletion``.

Why retries are forced off inside LiteLLM: its OpenAI client retries twice by default (invisible to every hook)
and ``num_retries=N`` resends any error, even a 400, with no wait and without the pre-call hook. Ours replace
theirs: each attempt is exactly one request, so the breaker, the in-flight limit and Retry-After see every one.

A fallback given as a model id keeps the call's other arguments. Endpoint and credential arguments
(``api_base``, ``api_key``, ``api_version``, ...) are kept only when the fallback has the primary's provider:
another provider's key or URL would be wrong for it. A fallback given as a mapping adds or overrides arguments
for that target (``{"model": "openai/gpt-4o-mini", "api_base": "https://backup.example/v1"}``).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ...clock import Clock
from ...config import ConfigError, ResilientConfig
from ...events import EventListener
from ...executor import AttemptContext, Candidate, ResilientExecutor, aserve, serve
from ...policies.tokens import TokenCost
from ...registry import Registry
from ...token_estimate import lazy_cost
from ._common import coerce_config, managed_call_id, provider_and_model, target_key
from ._departure import install as install_departures

# LiteLLM's own retry machinery; each would multiply our attempts or hide them from the policies.
_FORCED = {"num_retries": 0, "max_retries": 0}
_DROPPED_RETRY_ARGS = ("retry_policy",)
# Arguments that belong to one provider's endpoint or account, not inherited by another provider's fallback.
_ENDPOINT_ARGS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "custom_llm_provider",
        "organization",
        "azure_ad_token",
        "azure_ad_token_provider",
        "extra_headers",
        "headers",
    }
)
_ENDPOINT_PREFIXES = ("aws_", "vertex_", "watsonx_")
_NOTHING: Any = object()


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    provider: str | None
    model: str
    kwargs: dict[str, Any]


def _is_endpoint_arg(name: str) -> bool:
    return name in _ENDPOINT_ARGS or name.startswith(_ENDPOINT_PREFIXES)


def _check_retry_args(kwargs: Mapping[str, Any], where: str) -> None:
    overridden = [f"{name}={kwargs[name]!r}" for name in _FORCED if kwargs.get(name) not in (None, 0)]
    overridden += [name for name in _DROPPED_RETRY_ARGS if kwargs.get(name) is not None]
    if overridden:
        warnings.warn(
            f"{where}: ignoring LiteLLM's {', '.join(overridden)}: resilient_completion owns retries (each attempt "
            "is one request, with num_retries=0 and max_retries=0); set ResilientConfig(retry=RetryConfig(...))",
            UserWarning,
            stacklevel=4,
        )


def _plan(model: Any, messages: Any, fallbacks: Any, kwargs: dict[str, Any]) -> list[_Target]:
    """Every target of the call, primary first, each with the kwargs of its attempts."""
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"resilient completion needs model='provider/model' (a LiteLLM model id), got {model!r}")
    _check_retry_args(kwargs, "resilient_completion")
    base = {k: v for k, v in kwargs.items() if k not in _DROPPED_RETRY_ARGS}
    if messages is not None:
        base["messages"] = messages
    base.update(model=model, **_FORCED)
    entries: list[Mapping[str, Any]] = []
    if fallbacks is not None:
        if isinstance(fallbacks, str | bytes) or not isinstance(fallbacks, Sequence):
            raise TypeError(f"fallbacks must be a list of model ids or mappings, got {type(fallbacks).__name__}")
        for index, entry in enumerate(fallbacks):
            if isinstance(entry, str):
                entry = {"model": entry}
            if not isinstance(entry, Mapping):
                raise TypeError(f"fallbacks[{index}] must be a model id or a mapping, got {type(entry).__name__}")
            if not isinstance(entry.get("model"), str) or not entry["model"].strip():
                raise ValueError(f"fallbacks[{index}] needs a 'model' (a LiteLLM model id), got {dict(entry)!r}")
            if "fallbacks" in entry or "messages" in entry:
                raise ValueError(f"fallbacks[{index}] may not set 'fallbacks' or 'messages'")
            _check_retry_args(entry, f"fallbacks[{index}]")
            entries.append(entry)
    primary = _target(base)
    targets = [primary]
    for entry in entries:
        entry_provider, _ = provider_and_model(entry["model"], _str(entry.get("custom_llm_provider")))
        inherited = {
            k: v
            for k, v in base.items()
            if not _is_endpoint_arg(k) or (entry_provider is not None and entry_provider == primary.provider)
        }
        merged = {**inherited, **{k: v for k, v in entry.items() if k not in _DROPPED_RETRY_ARGS}, **_FORCED}
        targets.append(_target(merged))
    return targets


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _target(kwargs: dict[str, Any]) -> _Target:
    model = kwargs["model"]
    provider, model_name = provider_and_model(model, _str(kwargs.get("custom_llm_provider")))
    name = target_key(
        model,
        api_base=kwargs.get("api_base") or kwargs.get("base_url"),
        custom_llm_provider=kwargs.get("custom_llm_provider"),
    )
    return _Target(name, provider, model_name, kwargs)


def _cost(target: _Target) -> Callable[[], TokenCost]:
    """The call's estimated tokens, counted only if the target has token limits."""
    kwargs = target.kwargs
    return lazy_cost(kwargs.get("model", target.model), kwargs.get("messages") or [], kwargs)


def _attempt_kwargs(target: _Target, ctx: AttemptContext) -> dict[str, Any]:
    kwargs = dict(target.kwargs)
    kwargs["litellm_call_id"] = managed_call_id()  # a registered ResilienceCallback leaves our calls alone
    if ctx.timeout is not None:
        given = kwargs.get("timeout")
        if isinstance(given, int | float) and not isinstance(given, bool):
            kwargs["timeout"] = min(float(given), ctx.timeout)
        else:
            kwargs["timeout"] = ctx.timeout
    return kwargs


def _executor(
    config: ResilientConfig | Mapping[str, Any] | None,
    registry: Registry | None,
    clock: Clock | None,
    listeners: Sequence[EventListener],
) -> ResilientExecutor:
    resolved = coerce_config(config)
    if registry is None and not resolved.share_state:
        # A private scope per call would be a breaker that forgets every failure as soon as the call ends.
        raise ConfigError(
            "share_state=False gives resilient_(a)completion a new, empty breaker and limiter on every call, so "
            "its circuit could never open: keep one scope and pass it on each call instead (registry=Registry())"
        )
    install_departures()
    return ResilientExecutor(resolved, registry=registry, clock=clock, listeners=listeners)


# --- streams ----------------------------------------------------------------------------------------------


class ResilientAsyncStream:
    """The chunks of ``await resilient_acompletion(..., stream=True)``.

    Retries and fallbacks happened before the first chunk (already fetched when this object is returned); after
    it, an error surfaces normalised. The target's in-flight permit is held until the stream ends, fails, is
    closed (``aclose()``, ``async with``), or is dropped unfinished (the event loop then closes it).
    """

    def __init__(self, source: AsyncIterator[Any] | None, first: Any, target: str | None) -> None:
        self._source = source
        self._first = first
        self.target = target  # the target that served the stream

    def __aiter__(self) -> ResilientAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._first is not _NOTHING:
            chunk, self._first = self._first, _NOTHING
            return chunk
        if self._source is None:
            raise StopAsyncIteration
        return await self._source.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the provider's stream and gives the permit back."""
        self._first = _NOTHING
        source, self._source = self._source, None
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> ResilientAsyncStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ResilientStream:
    """The chunks of ``resilient_completion(..., stream=True)``; the sync twin of ``ResilientAsyncStream``."""

    def __init__(self, source: Iterator[Any] | None, first: Any, target: str | None) -> None:
        self._source = source
        self._first = first
        self.target = target

    def __iter__(self) -> ResilientStream:
        return self

    def __next__(self) -> Any:
        if self._first is not _NOTHING:
            chunk, self._first = self._first, _NOTHING
            return chunk
        if self._source is None:
            raise StopIteration
        return next(self._source)

    def close(self) -> None:
        """Stop early: closes the provider's stream and gives the permit back."""
        self._first = _NOTHING
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ResilientStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _attempt_astream(kwargs: dict[str, Any]) -> AsyncIterator[Any]:
    import litellm

    response = await litellm.acompletion(**kwargs)
    try:
        async for chunk in response:
            yield chunk
    finally:
        close = getattr(response, "aclose", None)
        if close is not None:
            await close()


def _attempt_stream(kwargs: dict[str, Any]) -> Iterator[Any]:
    import litellm

    response = litellm.completion(**kwargs)
    try:
        yield from response
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()


# --- entry points -----------------------------------------------------------------------------------------


async def resilient_acompletion(
    model: str | None = None,
    messages: list[Any] | None = None,
    *,
    config: ResilientConfig | Mapping[str, Any] | None = None,
    fallbacks: Sequence[str | Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    clock: Clock | None = None,
    listeners: Sequence[EventListener] = (),
    **litellm_kwargs: Any,
) -> Any:
    """``litellm.acompletion`` with retry, fallback, circuit breaker, rate limit and in-flight limit.

    Example::

        response = await resilient_acompletion(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            fallbacks=["anthropic/claude-3-5-sonnet", {"model": "openai/gpt-4o", "api_base": BACKUP}],
            config=ResilientConfig(retry=RetryConfig(max_retries=2)),
        )

    Every other keyword goes to ``litellm.acompletion``, except ``num_retries``/``max_retries`` (forced to 0,
    with a warning if you set them: the executor retries) and ``retry_policy`` (dropped). ``stream=True``
    returns a ``ResilientAsyncStream`` once the first chunk has arrived; retries and fallbacks happen only
    before it. Failures raise a normalised ``ResilienceError`` whose ``attempts`` lists what was tried.
    """
    targets = _plan(model, messages, fallbacks, litellm_kwargs)
    executor = _executor(config, registry, clock, listeners)
    if litellm_kwargs.get("stream") is True:
        return await _astream(executor, targets)
    import litellm

    def attempt(kwargs: dict[str, Any]) -> Awaitable[Any]:
        return litellm.acompletion(**kwargs)  # type: ignore[no-any-return]

    return await executor.run(_candidates(targets, attempt))


def _candidates(targets: list[_Target], attempt: Callable[[dict[str, Any]], Any]) -> list[Candidate[Any]]:
    """One candidate per target; an attempt calls ``attempt`` with that target's kwargs for this attempt."""

    def call(target: _Target) -> Candidate[Any]:
        return Candidate(
            target.name, lambda ctx: attempt(_attempt_kwargs(target, ctx)), target.provider, target.model, _cost(target)
        )

    return [call(target) for target in targets]


async def _astream(executor: ResilientExecutor, targets: list[_Target]) -> ResilientAsyncStream:
    # The first chunk is read once, by the executor's opener; ``aserve`` hands it out first and settles the
    # ticket. Starting it here means a stream dropped unfinished is closed (and its permit freed) by the loop.
    opened = await executor.aopen_stream(_candidates(targets, _attempt_astream))
    source = aserve(opened)
    try:
        first = await source.__anext__()
    except StopAsyncIteration:
        return ResilientAsyncStream(None, _NOTHING, opened.target)
    return ResilientAsyncStream(source, first, opened.target)


def resilient_completion(
    model: str | None = None,
    messages: list[Any] | None = None,
    *,
    config: ResilientConfig | Mapping[str, Any] | None = None,
    fallbacks: Sequence[str | Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    clock: Clock | None = None,
    listeners: Sequence[EventListener] = (),
    **litellm_kwargs: Any,
) -> Any:
    """``litellm.completion`` with the full policy stack; the sync twin of ``resilient_acompletion``.

    Unlike a ``ResilienceCallback``, this gates sync calls too: the circuit, rate limit and in-flight limit
    are checked before each request. ``stream=True`` returns a ``ResilientStream``.
    """
    targets = _plan(model, messages, fallbacks, litellm_kwargs)
    executor = _executor(config, registry, clock, listeners)
    if litellm_kwargs.get("stream") is True:
        return _stream(executor, targets)
    import litellm

    return executor.run_sync(_candidates(targets, lambda kwargs: litellm.completion(**kwargs)))


def _stream(executor: ResilientExecutor, targets: list[_Target]) -> ResilientStream:
    opened = executor.open_stream(_candidates(targets, _attempt_stream))
    source = serve(opened)
    try:
        first = next(source)
    except StopIteration:
        return ResilientStream(None, _NOTHING, opened.target)
    return ResilientStream(source, first, opened.target)
