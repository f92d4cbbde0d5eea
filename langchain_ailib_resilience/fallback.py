"""FallbackChain: ordered targets, tried in turn on fallbackable errors.

Falls back on errors whose code is fallbackable (rate limits, quota, overload, timeouts, auth) and on local
rejections (open circuit, rate wait too long, in-flight full); stops at once on non-fallbackable ones (a bad
request fails the same everywhere). When every target fails, the last normalised error is raised with the
history of attempts in ``.attempts``. Each target keeps its own breaker and limiter, named as every other entry
point names it (``"gpt-4o"`` is ``openai/gpt-4o``), so shared with them in the registry scope.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from .clock import Clock
from .config import ResilientConfig
from .executor import AttemptContext, Candidate, ResilientExecutor, call_without_context
from .registry import Registry
from .signals import SignalsSnapshot
from .targets import split_target, target_key

T = TypeVar("T")


_MAPPING_KEYS_FOR_NAME = ("api_base", "base_url", "deployment_id", "custom_llm_provider")


def target_name(target: Any, index: int) -> str:
    """The target name of a chain entry, as every other entry point names it.

    A LiteLLM id is canonical (``"gpt-4o"`` → ``"openai/gpt-4o"``, ``@api_base`` when a mapping names one); a
    ``(name, payload)`` pair and a mapping's ``"target"`` are the names given; a chat model is named by its
    endpoint like ``ResilientChatModel`` names it; a plain callable by its ``__name__`` (``target<i>`` for a
    lambda), which names no endpoint and so keeps state private to the chain.
    """
    if isinstance(target, str):
        if not target.strip():
            raise ValueError(f"fallback target {index} is an empty string")
        return target_key(target.strip())
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str):
        return target[0]
    if isinstance(target, Mapping):
        return _mapping_name(target, index)
    if _is_chat_model(target):
        from .integrations.langchain._targets import parse_targets

        return parse_targets(target, (), shared_litellm_kwargs={})[0].name
    for attr in ("model_name", "model", "model_id"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) and name != "<lambda>" else f"target{index}"


def _mapping_name(target: Mapping[str, Any], index: int) -> str:
    explicit = target.get("target")
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit.strip():
            raise ValueError(f"fallback target {index}: 'target' must be a non-empty string, got {explicit!r}")
        return explicit
    model = target.get("model")
    if isinstance(model, str) and model.strip():
        custom = target.get("custom_llm_provider")
        return target_key(
            model.strip(),
            api_base=target.get("api_base") or target.get("base_url"),
            deployment_id=target.get("deployment_id"),
            custom_llm_provider=custom if isinstance(custom, str) else None,
        )
    if _is_chat_model(model):
        return target_name(model, index)
    raise ValueError(
        f"fallback target {index}: a mapping needs 'model' (a LiteLLM model id or a chat model), got {sorted(target)}"
    )


def _provider_model(target: Any) -> tuple[str | None, str | None]:
    """The provider and model an entry calls, where it says (for telemetry: a name like ``"primary"`` does not)."""
    if isinstance(target, tuple) and len(target) == 2:
        target = target[1]
    custom = None
    if isinstance(target, Mapping):
        custom = target.get("custom_llm_provider")
        target = target.get("model")
    if _is_chat_model(target):
        from .integrations.langchain._targets import parse_targets

        spec = parse_targets(target, (), shared_litellm_kwargs={})[0]
        return spec.provider, spec.model_name
    if not isinstance(target, str) or not target.strip():
        return None, None
    model = split_target(target_key(target.strip(), custom_llm_provider=custom))[0]
    provider, sep, name = model.partition("/")
    return (provider, name) if sep and provider and name else (None, model)


def _is_chat_model(value: Any) -> bool:
    """A LangChain chat model, told without importing LangChain (it is loaded if one exists)."""
    module = sys.modules.get("langchain_core.language_models")
    return module is not None and isinstance(value, module.BaseChatModel)


def _names_an_endpoint(target: Any) -> bool:
    """Whether the entry's name is an endpoint's (shared in the registry scope) rather than private."""
    if isinstance(target, str | tuple | Mapping):
        return True
    if _is_chat_model(target):
        from .integrations.langchain._targets import parse_targets

        return not parse_targets(target, (), shared_litellm_kwargs={})[0].private
    return False


class FallbackChain:
    """Try targets in order until one answers.

    Example::

        chain = FallbackChain(["openai/gpt-4o", "anthropic/claude-3-5-sonnet", "deepseek/deepseek-chat"])
        reply = await chain.arun(lambda model: call_model(model, prompt))   # called with each target in turn

        chain = FallbackChain([call_primary, call_backup])                  # or zero-argument callables
        reply = await chain.arun()

    With LangChain, ``chain.as_runnable(config=...)`` gives a Runnable for wherever ``with_fallbacks`` is used.
    """

    def __init__(
        self,
        targets: Sequence[Any],
        *,
        config: ResilientConfig | None = None,
        executor: ResilientExecutor | None = None,
        registry: Registry | None = None,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(targets, str | bytes) or not isinstance(targets, Sequence):
            raise TypeError(f"FallbackChain takes a list of targets, got {type(targets).__name__}")
        if not targets:
            raise ValueError("FallbackChain needs at least one target")
        self.targets = list(targets)
        self.names = _unique_names(self.targets)
        self._endpoints = [_provider_model(target) for target in self.targets]
        if executor is not None and config is not None:
            raise ValueError("pass either config= or executor=, not both")
        self.executor = executor or ResilientExecutor(config, registry=registry, clock=clock)
        self.executor.keep_private(
            name for name, target in zip(self.names, self.targets, strict=True) if not _names_an_endpoint(target)
        )

    @property
    def config(self) -> ResilientConfig:
        return self.executor.config

    def _candidates(self, call: Callable[[Any], Any] | None) -> list[Candidate[Any]]:
        candidates: list[Candidate[Any]] = []
        for name, target, endpoint in zip(self.names, self.targets, self._endpoints, strict=True):
            payload = target[1] if isinstance(target, tuple) else target
            if call is not None:
                fn = _bind(call, payload)
            elif callable(payload):
                fn = call_without_context(payload)
            else:
                raise TypeError(
                    f"target {name!r} is not callable: pass a function that takes the target, e.g. "
                    "chain.run(lambda model: ...)"
                )
            candidates.append(Candidate(name, fn, *endpoint))
        return candidates

    async def arun(self, call: Callable[[Any], Awaitable[T]] | None = None, /) -> T:
        """Await ``call(target)`` (or ``target()``) for each target in order until one succeeds."""
        result: T = await self.executor.run(self._candidates(call))
        return result

    def run(self, call: Callable[[Any], T] | None = None, /) -> T:
        """Blocking ``arun``."""
        result: T = self.executor.run_sync(self._candidates(call))
        return result

    def as_runnable(self, config: ResilientConfig | None = None, **kwargs: Any) -> Any:
        """A LangChain Runnable that routes across the targets (chat models or LiteLLM model ids)."""
        from .integrations.langchain import fallback_runnable

        return fallback_runnable(self, config=config, **kwargs)

    def signals_snapshot(self) -> SignalsSnapshot:
        for name in self.names:
            self.executor.state(name)
        return self.executor.signals_snapshot(self.names[0])

    def __repr__(self) -> str:
        return f"FallbackChain({self.names!r})"


def _unique_names(targets: list[Any]) -> list[str]:
    """Name each target; the same id twice is a mistake, but two callables may share a ``__name__``."""
    names: list[str] = []
    for index, target in enumerate(targets):
        name = target_name(target, index)
        if name in names:
            if isinstance(target, str):
                raise ValueError(f"FallbackChain targets must be distinct: {name!r} appears twice")
            name = f"{name}#{index}"
        names.append(name)
    return names


def _bind(call: Callable[[Any], Any], target: Any) -> Callable[[AttemptContext], Any]:
    return lambda _ctx: call(target)
