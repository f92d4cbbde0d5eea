"""What the emulator can be told to do: ``Success``, ``Fault``, and their short text specs for the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeGuard, get_args

from ._wire import ErrorKind, ProviderFormat, ToolCall, split_text

DEFAULT_TEXT = "Hello from the provider emulator."

FaultKind = Literal[
    "rate_limit",
    "quota",
    "server_error",
    "overloaded",
    "context_length",
    "content_filter",
    "auth",
    "hang",
    "reset",
    "malformed",
    "stream_drop",
    "stream_error",
    "http",
]
Source = Literal["bucket", "script", "random", "default"]
"""What decided a request's answer: the token bucket, the script, the random fault rate, or a default."""

ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


@dataclass(frozen=True, slots=True)
class Success:
    """Answer normally with ``text``, after ``latency`` seconds.

    A streaming request gets ``text`` split into word chunks (or ``chunks`` if given), ``chunk_delay`` seconds
    apart, so one script serves both ``invoke`` and ``stream`` callers. ``completion_tokens`` defaults to the
    number of chunks.

    ``tool_calls`` (``ToolCall("get_weather", {"city": "Paris"})``) answers with exactly those tool calls
    (``()``: never a tool call). Left ``None`` with the default text, a request that offers tools or asks for a
    JSON schema gets a tool call or JSON generated from its schema, as a model would; a scripted text is sent
    as written unless the request forces a tool (see ``_tools``).
    """

    text: str = DEFAULT_TEXT
    prompt_tokens: int = 10
    completion_tokens: int | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    chunks: tuple[str, ...] | None = None
    tool_calls: tuple[ToolCall, ...] | None = None

    @property
    def kind(self) -> Literal["success"]:
        return "success"

    def pieces(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else split_text(self.text)


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure, rendered in the format of whichever provider the request came to.

    Build one with the class methods (``Fault.rate_limit(0.2)``, ``Fault.overloaded()``, ...): the same fault
    then means "the provider's own way of saying it" for OpenAI, Anthropic and Gemini requests alike, which
    is what a fault matrix across providers needs.
    """

    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None
    after_chunks: int = 0
    error: Fault | None = None
    latency: float = 0.0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    text: str = DEFAULT_TEXT

    @classmethod
    def rate_limit(cls, retry_after: float = 1.0, *, latency: float = 0.0) -> Fault:
        """429 with Retry-After and the provider's rate-limit headers (Gemini: RetryInfo in the body)."""
        return cls("rate_limit", retry_after=retry_after, latency=latency)

    @classmethod
    def quota(cls, *, latency: float = 0.0) -> Fault:
        """A spent quota: OpenAI 429 ``insufficient_quota``, Anthropic 400 "credit balance is too low",
        Gemini 429 ``RESOURCE_EXHAUSTED`` naming a per-day quota."""
        return cls("quota", latency=latency)

    @classmethod
    def server_error(cls, status: int = 500, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """A 5xx (500, 502, 503, 504, 529) with the provider's error body for that status."""
        if not 500 <= status <= 599:
            raise ValueError(f"server_error needs a 5xx status, got {status}")
        return cls("server_error", status=status, retry_after=retry_after, latency=latency)

    @classmethod
    def overloaded(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """The provider's overload signal: Anthropic 529 ``overloaded_error``, OpenAI and Gemini 503."""
        return cls("overloaded", retry_after=retry_after, latency=latency)

    @classmethod
    def context_length(cls, *, latency: float = 0.0) -> Fault:
        """OpenAI 400 ``context_length_exceeded``, Anthropic 400 "prompt is too long", Gemini 400."""
        return cls("context_length", latency=latency)

    @classmethod
    def content_filter(cls, *, latency: float = 0.0) -> Fault:
        """Azure OpenAI's 400 ``content_filter``; Anthropic 400 "blocked by content filtering policy"."""
        return cls("content_filter", latency=latency)

    @classmethod
    def auth(cls, *, latency: float = 0.0) -> Fault:
        """A rejected API key: 401 for OpenAI and Anthropic, 400 ``API_KEY_INVALID`` for Gemini (as Google does)."""
        return cls("auth", latency=latency)

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Hold the request ``seconds`` (or until ``stop()``), then close without answering: a timeout."""
        return cls("hang", seconds=seconds)

    @classmethod
    def reset(cls, *, latency: float = 0.0) -> Fault:
        """Reset the connection (TCP RST) without an answer."""
        return cls("reset", latency=latency)

    @classmethod
    def malformed(cls, *, latency: float = 0.0) -> Fault:
        """200 with a truncated JSON body (a stream gets a broken event)."""
        return cls("malformed", latency=latency)

    @classmethod
    def stream_drop(cls, after_chunks: int = 2, *, text: str = DEFAULT_TEXT, latency: float = 0.0) -> Fault:
        """Stream ``after_chunks`` text chunks, then drop the connection mid-body.

        A non-streaming request gets half of its body and then the drop.
        """
        return cls("stream_drop", after_chunks=after_chunks, text=text, latency=latency)

    @classmethod
    def stream_error(
        cls, after_chunks: int = 2, error: Fault | None = None, *, text: str = DEFAULT_TEXT, latency: float = 0.0
    ) -> Fault:
        """Stream ``after_chunks`` chunks, then the provider's error event for ``error`` (default: overloaded).

        A non-streaming request gets ``error`` as a plain HTTP error.
        """
        error = error or cls.overloaded()
        if error.kind not in ERROR_KINDS and error.kind != "http":
            raise ValueError(f"a stream can only carry an HTTP error fault, not {error.kind!r}")
        return cls("stream_error", after_chunks=after_chunks, error=error, text=text, latency=latency)

    @classmethod
    def http(
        cls,
        status: int,
        body: bytes | str | Mapping[str, Any] = b"",
        headers: Mapping[str, str] | None = None,
        *,
        latency: float = 0.0,
    ) -> Fault:
        """Any raw answer, for cases the named faults do not cover (a JSON ``body`` is serialised)."""
        raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return cls("http", status=status, body=raw, headers=tuple((headers or {}).items()), latency=latency)


Behaviour: TypeAlias = Success | Fault


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulator received, and how it was answered.

    ``status`` is the HTTP status sent (``None`` when no answer was sent: hang, reset). ``timestamp`` is
    the emulator's clock (``time.monotonic()`` by default) on arrival. ``body`` is the request's JSON when it
    is at most ``BODY_LOG_LIMIT`` bytes; a larger body keeps only its small top-level fields (``model``,
    ``stream``, ``max_tokens``...) and sets ``body_truncated``, so a long soak or a huge prompt cannot grow the
    log without bound. ``body_size`` is the request body's length in bytes. ``tokens`` is what the request counts
    against a token limit at arrival (its prompt estimate plus its ``max_tokens``; see ``rate_limit``).
    """

    index: int
    model: str
    provider: ProviderFormat
    path: str
    stream: bool
    timestamp: float
    outcome: Literal["success"] | FaultKind
    source: Source
    status: int | None
    body: Mapping[str, Any] = field(repr=False, compare=False)
    body_size: int = 0
    body_truncated: bool = False
    tokens: int = 0


BODY_LOG_LIMIT = 64 * 1024
_SMALL_FIELD = 1024


def logged_body(body: Mapping[str, Any], size: int) -> tuple[Mapping[str, Any], bool]:
    """What a request record keeps of ``body`` (``size`` bytes on the wire), and whether it was cut."""
    if size <= BODY_LOG_LIMIT:
        return body, False
    small = {
        key: value
        for key, value in body.items()
        if value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= _SMALL_FIELD)
    }
    return small, True


def default_faults() -> tuple[Behaviour, ...]:
    return (
        Fault.rate_limit(0.1),
        Fault.server_error(500),
        Fault.server_error(502),
        Fault.overloaded(),
        Fault.reset(),
    )


def is_error_kind(kind: str) -> TypeGuard[ErrorKind]:
    return kind in ERROR_KINDS


# --- text specs (CLI) ----------------------------------------------------------------------------------------

_SPEC_HELP = (
    "ok[:TEXT], latency:SECONDS, 429[:RETRY_AFTER], quota, 500, 502, 503, 504, 529, overloaded, "
    "context_length, content_filter, auth, hang[:SECONDS], reset, malformed, stream_drop[:N], stream_error[:N]"
)


def parse_behaviour(spec: str) -> Behaviour:
    """A behaviour from a short text spec, for the command line: ``429:0.5``, ``hang:2``, ``ok:Hi``, ...

    Accepted: ``ok[:TEXT]``, ``latency:SECONDS``, ``429[:RETRY_AFTER]`` (or ``rate_limit``), ``quota``,
    ``500``/``502``/``503``/``504``/``529`` (or ``server_error[:STATUS]``), ``overloaded``,
    ``context_length``, ``content_filter``, ``auth``, ``hang[:SECONDS]``, ``reset``, ``malformed``,
    ``stream_drop[:N]``, ``stream_error[:N]``.
    """
    name, _, arg = spec.strip().partition(":")
    name = name.lower().replace("-", "_")
    try:
        if name in ("ok", "success"):
            return Success(text=arg) if arg else Success()
        if name == "latency":
            return Success(latency=float(arg or 1))
        if name in ("429", "rate_limit"):
            return Fault.rate_limit(float(arg)) if arg else Fault.rate_limit()
        if name.isdigit() and 500 <= int(name) <= 599:
            return Fault.server_error(int(name))
        if name == "server_error":
            return Fault.server_error(int(arg or 500))
        if name == "hang":
            return Fault.hang(float(arg) if arg else None)
        if name in ("stream_drop", "stream_error"):
            after = int(arg) if arg else 2
            return Fault.stream_drop(after) if name == "stream_drop" else Fault.stream_error(after)
        simple = {
            "quota": Fault.quota,
            "overloaded": Fault.overloaded,
            "context_length": Fault.context_length,
            "content_filter": Fault.content_filter,
            "auth": Fault.auth,
            "401": Fault.auth,
            "reset": Fault.reset,
            "malformed": Fault.malformed,
        }
        if name in simple and not arg:
            return simple[name]()
    except ValueError as exc:
        raise ValueError(f"bad behaviour {spec!r}: {exc}") from None
    raise ValueError(f"unknown behaviour {spec!r}; expected one of: {_SPEC_HELP}")
