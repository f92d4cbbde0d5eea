"""Partner chat models (langchain-openai, langchain-anthropic): SDK retries off, async clients safe across loops.

Why this module knows partner internals: both packages build their SDK clients when the model is constructed
(``ChatOpenAI`` in a validator, ``ChatAnthropic`` in cached properties) with the retry count baked in, so a copy
with ``max_retries=0`` in its field still retries inside the SDK (2 retries by default, whatever the field
says). The SDK's own ``with_options(max_retries=0)`` gives a client identical in everything else (base URL,
headers, a user's ``http_client``), which is what we install on a copy; the user's instance is never touched.

Both packages also share one cached ``httpx`` async client per endpoint across every instance, and its pooled
connections belong to the event loop that opened them: a second ``asyncio.run()`` reuses them and fails with
"Event loop is closed". Unless the user supplied their own async HTTP client, the copy's async SDK client gets a
transport that keeps one connection pool per running event loop.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import urllib.request
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel

__all__ = ["call_timeout", "endpoint_of", "loop_safe_http_client", "needs_strict_tools", "without_own_retries"]

# Fields that hold SDK clients built at construction: never passed to a rebuild.
_BUILT_CLIENTS = frozenset({"client", "async_client", "root_client", "root_async_client"})
# ChatAnthropic's cached properties that hold (or feed) its SDK clients.
_ANTHROPIC_CACHED = ("_client_params", "_client", "_async_client")
# Where chat models keep the endpoint they call, most specific first.
_ENDPOINT_FIELDS = ("azure_endpoint", "openai_api_base", "anthropic_api_url", "api_base", "base_url", "endpoint")


def without_own_retries(model: BaseChatModel) -> BaseChatModel:
    """A copy of ``model`` that sends one request per call (its SDK's retries off); ``model`` is unchanged."""
    fields = type(model).model_fields
    if {"root_client", "root_async_client"} <= fields.keys():  # langchain-openai: ChatOpenAI, AzureChatOpenAI
        return _openai_family(model)
    if type(model).__module__.startswith("langchain_anthropic") and "max_retries" in fields:
        return _anthropic(model)
    if "max_retries" not in fields or getattr(model, "max_retries", None) == 0:
        return model
    return _rebuilt(model)


def _openai_family(model: BaseChatModel) -> BaseChatModel:
    root: Any = getattr(model, "root_client", None)
    root_async: Any = getattr(model, "root_async_client", None)
    copy = model.model_copy(update={"max_retries": 0})
    if root is not None:
        copy.root_client = root.with_options(max_retries=0)  # type: ignore[attr-defined]
        copy.client = copy.root_client.chat.completions  # type: ignore[attr-defined]
    if root_async is not None:
        options: dict[str, Any] = {"max_retries": 0}
        if getattr(model, "http_async_client", None) is None:
            http_client = loop_safe_http_client(root_async)
            if http_client is not None:
                options["http_client"] = http_client
        copy.root_async_client = root_async.with_options(**options)  # type: ignore[attr-defined]
        copy.async_client = copy.root_async_client.chat.completions  # type: ignore[attr-defined]
    return copy


def _anthropic(model: BaseChatModel) -> BaseChatModel:
    copy = model.model_copy(update={"max_retries": 0})
    for name in _ANTHROPIC_CACHED:  # model_copy copies cached properties too: rebuild them from max_retries=0
        copy.__dict__.pop(name, None)
    async_client: Any = getattr(copy, "_async_client", None)
    if async_client is not None and hasattr(async_client, "with_options"):
        http_client = loop_safe_http_client(async_client)
        if http_client is not None:
            copy.__dict__["_async_client"] = async_client.with_options(http_client=http_client)
    return copy


def _rebuilt(model: BaseChatModel) -> BaseChatModel:
    """Any other model with a ``max_retries`` field: rebuilt from the fields the user set, with ``max_retries=0``.

    Rebuilt rather than copied so an SDK client built at construction picks the setting up; fields holding
    built clients are left out (a user's ``http_client`` is kept).
    """
    fields = type(model).model_fields
    values = {
        name: getattr(model, name)
        for name in model.model_fields_set
        if name in fields and name != "max_retries" and name not in _BUILT_CLIENTS
    }
    try:
        return type(model)(**values, max_retries=0)
    except Exception as exc:
        warnings.warn(
            f"could not rebuild {type(model).__name__} with max_retries=0 ({exc}); using a copy with the field "
            "set, which may not reach an SDK client built at construction: build the model with max_retries=0",
            stacklevel=4,
        )
        return model.model_copy(update={"max_retries": 0})


def call_timeout(model: BaseChatModel) -> tuple[bool, float | None]:
    """Whether a call-time ``timeout=`` reaches ``model``'s SDK as the request's timeout, and the model's own
    timeout in seconds (when it is a plain number).

    langchain-openai and langchain-anthropic pass call kwargs to the SDK's ``create``, which takes ``timeout``
    as a request option (never sent in the body): the only way to bound a sync attempt, which cannot be
    interrupted once running.
    """
    fields = type(model).model_fields
    if {"root_client", "request_timeout"} <= fields.keys():
        own = getattr(model, "request_timeout", None)
    elif type(model).__module__.startswith("langchain_anthropic") and "default_request_timeout" in fields:
        own = getattr(model, "default_request_timeout", None)
    else:
        return False, None
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return True, float(own)
    return True, None


def needs_strict_tools(model: BaseChatModel) -> bool:
    """Whether ``model`` (a langchain-openai Chat Completions model) needs ``strict=True`` tools beside a
    ``response_format``, as ``create_agent`` arranges for OpenAI models it sees directly."""
    is_openai = any(cls.__name__ == "BaseChatOpenAI" for cls in type(model).__mro__)
    return is_openai and not getattr(model, "use_responses_api", False)


def endpoint_of(model: BaseChatModel) -> str | None:
    """The base URL ``model`` sends to: its own endpoint field, else its SDK client's ``base_url``."""
    for name in _ENDPOINT_FIELDS:
        value = getattr(model, name, None)
        if isinstance(value, str) and value:
            return value
    for name in ("root_client", "root_async_client"):
        client = getattr(model, name, None)
        base = getattr(client, "base_url", None)
        if base is not None:
            return str(base)
    return None


# --- async HTTP clients that work in every event loop ---------------------------------------------------------


class _PerLoop:
    """An httpx async transport holding one real transport (one connection pool) per running event loop."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _current(self) -> Any:
        loop = asyncio.get_running_loop()
        transport = self._by_loop.get(loop)
        if transport is None:
            for stale in [other for other in list(self._by_loop) if other.is_closed()]:
                self._by_loop.pop(stale, None)  # its connections died with their loop
            transport = self._by_loop.setdefault(loop, self._factory())
        return transport

    async def handle_async_request(self, request: Any) -> Any:
        return await self._current().handle_async_request(request)

    async def aclose(self) -> None:
        transport = self._by_loop.pop(asyncio.get_running_loop(), None)
        if transport is not None:
            await transport.aclose()


@functools.cache
def _per_loop_class(library: str) -> type[Any]:
    module = importlib.import_module(library)
    return type("PerLoopTransport", (_PerLoop, module.AsyncBaseTransport), {})


def _httpx_library(http_client: object) -> str | None:
    for cls in type(http_client).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("httpx", "httpx2"):
            return root
    return None


def loop_safe_http_client(sdk_client: Any) -> Any | None:
    """An async HTTP client for ``sdk_client`` (an OpenAI or Anthropic async client) that works in every loop.

    ``None`` (keep the SDK's client) when the HTTP library cannot be told, or when proxy environment variables
    are set: a custom transport would bypass httpx's own proxy detection.
    """
    current = getattr(sdk_client, "_client", None)
    library = _httpx_library(current)
    if library is None or urllib.request.getproxies():
        return None
    module = importlib.import_module(library)
    sdk = importlib.import_module(type(sdk_client).__module__.partition(".")[0])
    limits = getattr(sdk, "DEFAULT_CONNECTION_LIMITS", None) or module.Limits(max_connections=1000)
    client_class = getattr(sdk, "DefaultAsyncHttpxClient", module.AsyncClient)
    transport = _per_loop_class(library)(functools.partial(module.AsyncHTTPTransport, limits=limits))
    return client_class(transport=transport)
