"""Every public coroutine of the API is ``a``-prefixed, so a caller can tell at the name what must be awaited."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import langchain_ailib_resilience as pkg
import langchain_ailib_resilience.testing as testing
from langchain_ailib_resilience.clock import Clock

# Names a framework makes us spell its way, with the reason. Names that already start with ``a`` (LiteLLM's
# CustomLogger ``async_*`` hooks, LangChain's ``ainvoke``/``astream``) and private hooks (LangChain's
# ``_agenerate``/``_astream``) need no entry. Dunders (``__aenter__``/``__aexit__``) are Python's protocol.
FRAMEWORK_MANDATED: dict[str, str] = {
    # The async twin of ``resilient_completion``: the ``a`` prefixes LiteLLM's verb, as in ``litellm.acompletion``.
    "resilient_acompletion": "LiteLLM's acompletion naming",
}

_OURS = "langchain_ailib_resilience"


def _is_async(obj: Any) -> bool:
    if isinstance(obj, staticmethod | classmethod):
        obj = obj.__func__
    if not callable(obj):
        return False
    obj = inspect.unwrap(obj)
    return inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj)


def _public_async() -> Iterator[str]:
    """``Owner.name`` of each async function or method our code defines on the public API."""
    faces = [(name, getattr(pkg, name)) for name in pkg.__all__]
    faces += [(name, getattr(testing, name)) for name in testing.__all__]
    faces.append(("Clock", Clock))
    for face, obj in faces:
        if inspect.isclass(obj):
            for klass in obj.__mro__:
                if not klass.__module__.startswith(_OURS):
                    continue  # a base class's names are its framework's business
                for name, member in vars(klass).items():
                    if not name.startswith("_") and _is_async(member):
                        yield f"{face}.{name}"
        elif _is_async(obj):
            yield face


def test_public_coroutines_are_a_prefixed() -> None:
    found = set(_public_async())
    wrong = sorted(
        qual for qual in found if not qual.rsplit(".", 1)[-1].startswith("a") and qual not in FRAMEWORK_MANDATED
    )
    assert wrong == [], f"async without the a-prefix: {wrong}"
    # The walk reaches the API (a walk that finds nothing would pass for the wrong reason).
    assert {"Clock.await_future", "Clock.arun_with_timeout", "FakeClock.asleep", "ResilientExecutor.astream"} <= found
    assert "ResilienceCallback.async_pre_call_deployment_hook" in found


def test_framework_mandated_names_are_still_reached() -> None:
    # An allow-list entry whose name left the API would silently excuse a future one.
    assert set(FRAMEWORK_MANDATED) <= set(_public_async())
