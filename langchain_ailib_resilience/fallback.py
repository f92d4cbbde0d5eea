"""FallbackChain: ordered targets, tried in turn on fallbackable errors.

Falls back on errors whose code is fallbackable (rate limits, quota, overload, timeouts, auth) and on local
rejections (open circuit, rate wait too long, in-flight full); stops at once on non-fallbackable ones (a bad
request fails the same everywhere). When every target fails, the last normalised error is raised with the
history of attempts in ``.attempts``. Each target keeps its own breaker and limiter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .clock import Clock
from .config import ResilientConfig
from .executor import AttemptContext, Candidate, ResilientExecutor, call_without_context
from .registry import Registry
from .signals import SignalsSnapshot

T = TypeVar("T")


def target_name(target: Any, index: int) -> str:
    """A stable name for a target: its id string, a chat model's provider/model, or a callable's name."""
    if isinstance(target, str):
        if not target.strip():
            raise ValueError(f"fallback target {index} is an empty string")
        return target
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str):
        return target[0]
    for attr in ("model_name", "model", "model_id"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) and name != "<lambda>" else f"target{index}"


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
        if executor is not None and config is not None:
            raise ValueError("pass either config= or executor=, not both")
        self.executor = executor or ResilientExecutor(config, registry=registry, clock=clock)

    @property
    def config(self) -> ResilientConfig:
        return self.executor.config

    def _candidates(self, call: Callable[[Any], Any] | None) -> list[Candidate[Any]]:
        candidates: list[Candidate[Any]] = []
        for name, target in zip(self.names, self.targets, strict=True):
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
            candidates.append(Candidate(name, fn))
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
