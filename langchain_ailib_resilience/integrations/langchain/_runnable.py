"""A Runnable that routes each call across target runnables through the executor.

What ``ResilientChatModel.with_structured_output`` returns (each target's own structured-output runnable, so
provider-native JSON schema keeps working), and what ``FallbackChain.as_runnable`` returns when some targets are
not chat models. Same tracing as the chat model: one chain run per call, one child run per attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from ...executor import ResilientExecutor
from ...signals import SignalsSnapshot
from . import _calls as calls
from ._calls import Route


class ResilientRunnable(Runnable[Any, Any]):
    """Try ``routes`` in order with retry, breaker, limits and fallback; errors surface normalised.

    Example::

        structured = resilient_model.with_structured_output(Answer)   # a ResilientRunnable
        answer = structured.invoke("What weighs more?")
    """

    def __init__(self, routes: Sequence[Route], executor: ResilientExecutor, *, name: str = "ResilientRunnable"):
        if not routes:
            raise ValueError("ResilientRunnable needs at least one route")
        self.routes = tuple(routes)
        self.executor = executor
        self.name = name

    @property
    def targets(self) -> list[str]:
        return [route.target for route in self.routes]

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return calls.invoke(self, self.executor, self.routes, input, ensure_config(config), kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await calls.ainvoke(self, self.executor, self.routes, input, ensure_config(config), kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from calls.stream(self, self.executor, self.routes, input, ensure_config(config), kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        stream = calls.astream(self, self.executor, self.routes, input, ensure_config(config), kwargs)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await calls.aclose(stream)

    def signals_snapshot(self) -> SignalsSnapshot:
        """The first target's signals, with an entry per target."""
        for route in self.routes:
            self.executor.state(route.target)
        return self.executor.signals_snapshot(self.routes[0].target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, targets={self.targets!r})"
