"""``FallbackChain.as_runnable``: the chain's targets as one LangChain Runnable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langchain_core.runnables.base import coerce_to_runnable

from ...config import ResilientConfig
from ...executor import ResilientExecutor
from ._calls import Route
from ._model import ResilientChatModel
from ._runnable import ResilientRunnable
from ._targets import describe

if TYPE_CHECKING:  # the chain imports this module lazily: no import circle at run time
    from ...fallback import FallbackChain


def fallback_runnable(chain: FallbackChain, config: ResilientConfig | None = None, **kwargs: Any) -> Runnable[Any, Any]:
    """A Runnable over ``chain``'s targets, usable wherever ``primary.with_fallbacks([...])`` would be.

    Chat models and LiteLLM ids give a ``ResilientChatModel`` (``kwargs`` are its settings); other runnables or
    callables (called with the input) give a ``ResilientRunnable``. Target names, registry and clock are the
    chain's, so ``chain.signals_snapshot()`` sees the same state; ``config`` overrides the chain's config.
    """
    executor = chain.executor
    if config is not None:
        executor = ResilientExecutor(
            config, registry=executor.registry, clock=executor.clock, private_targets=executor.private_targets
        )
    payloads = [target[1] if isinstance(target, tuple) else target for target in chain.targets]
    if all(isinstance(p, BaseChatModel | str | Mapping) for p in payloads):
        entries = [
            {**p, "target": name} if isinstance(p, Mapping) else {"model": p, "target": name}
            for name, p in zip(chain.names, payloads, strict=True)
        ]
        model = ResilientChatModel(
            model=entries[0],
            fallbacks=entries[1:],
            config=executor.config,
            registry=executor.registry,
            clock=executor.clock,
            **kwargs,
        )
        if config is None and "max_retries" not in kwargs:
            model._executor = executor  # the chain's own executor: its listeners see these calls too
        else:
            model._executor.keep_private(executor.private_targets)
        return model
    if kwargs.keys() - {"name"}:
        raise TypeError(f"fallback_runnable: {sorted(kwargs.keys() - {'name'})} apply only to chat-model chains")
    routes = []
    for name, payload in zip(chain.names, payloads, strict=True):
        if isinstance(payload, str):
            payload = ResilientChatModel(model={"model": payload, "target": name})._base_routes()[0].runnable
        elif not isinstance(payload, Runnable) and not callable(payload):
            raise TypeError(f"target {name!r} is neither a Runnable, a chat model nor a callable: {describe(payload)}")
        routes.append(Route(name, coerce_to_runnable(payload)))
    return ResilientRunnable(routes, executor, name=kwargs.get("name", "FallbackChain"))
