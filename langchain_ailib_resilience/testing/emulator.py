"""A scripted local LLM provider: OpenAI, Anthropic and Gemini wire formats on 127.0.0.1.

Why a real HTTP server rather than mocks: LiteLLM's ``mock_response`` skips the HTTP layer, so it cannot show
how a 429's headers, an Anthropic 529 or a stream cut after two chunks reach the caller. The emulator answers
with each provider's own status codes, headers and bodies, so the real SDK transports (httpx, aiohttp), LiteLLM's
exception mapping and this package's classifier all run as they would against the provider.

It uses only the standard library (``http.server`` in a background thread), so the package gains no dependency.

Each request is answered by the first of: the token bucket (if one is configured and empty: a 429), the
model's script (a queue, consumed one behaviour per request), the random fault rate, the model's default, the
emulator-wide default, and finally ``Success()``. Models are keyed by the name the provider sees; a LiteLLM
prefix (``openai/``, ``anthropic/``, ``gemini/``, ``azure/``) given to the scripting methods is dropped.

Routes: ``POST /v1/chat/completions`` (OpenAI; ``stream: true`` for SSE), ``POST
/openai/deployments/{model}/chat/completions`` (Azure OpenAI), ``POST /v1/messages`` (Anthropic),
``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` (Gemini), and
``GET /health``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias, TypeGuard, get_args
from urllib.parse import urlsplit

from ._formats import (
    ErrorKind,
    FaultResponse,
    ProviderFormat,
    StreamEvent,
    error_response,
    malformed_event,
    split_text,
    stream_error_event,
    stream_events,
    success_body,
)

__all__ = [
    "DEFAULT_TEXT",
    "Behaviour",
    "Fault",
    "FaultKind",
    "ProviderEmulator",
    "ProviderFormat",
    "RequestRecord",
    "Source",
    "Success",
    "parse_behaviour",
]

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

_ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))
_PREFIXES = ("openai/", "anthropic/", "gemini/", "azure/")
_GEMINI_PATH = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$")
_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_MALFORMED = b'{"id": "chatcmpl-emu", "object": "chat.completion", "choices": [{"index": 0, "message": {"role'


@dataclass(frozen=True, slots=True)
class Success:
    """Answer normally with ``text``, after ``latency`` seconds.

    A streaming request gets ``text`` split into word chunks (or ``chunks`` if given), ``chunk_delay`` seconds
    apart, so one script serves both ``invoke`` and ``stream`` callers. ``completion_tokens`` defaults to the
    number of chunks.
    """

    text: str = DEFAULT_TEXT
    prompt_tokens: int = 10
    completion_tokens: int | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    chunks: tuple[str, ...] | None = None

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
        if error.kind not in _ERROR_KINDS and error.kind != "http":
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
    the emulator's clock (``time.monotonic()`` by default) on arrival. ``body`` is the request's JSON.
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


@dataclass(slots=True)
class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take a token, or return the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class _Chaos:
    rate: float
    faults: tuple[Behaviour, ...]
    rng: random.Random


@dataclass(frozen=True, slots=True)
class _Route:
    provider: ProviderFormat
    model: str
    stream: bool
    body: Mapping[str, Any]
    path: str


def _key(model: str | None) -> str | None:
    if model is None:
        return None
    for prefix in _PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def _default_faults() -> tuple[Behaviour, ...]:
    return (
        Fault.rate_limit(0.1),
        Fault.server_error(500),
        Fault.server_error(502),
        Fault.overloaded(),
        Fault.reset(),
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a soak opens 100+ connections at once; the default backlog of 5 refuses some

    def __init__(self, address: tuple[str, int], emulator: ProviderEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        """Wake handlers blocked on idle keep-alive connections so they end with the server."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.emulator.verbose:
            return  # clients that time out or disconnect are part of the job, not errors worth a traceback
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Called just before the bytes that let the client finish (the body, the last chunk, the close), so the
    # in-flight count never includes a request its client has already seen end: peaks are a lower bound of the
    # client's own concurrency, never above it.
    finishing: Callable[[], None] | None = None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle plus the client's delayed ACK
        # adds ~40 ms to every answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if urlsplit(self.path).path in ("/", "/health"):
            _send(self, 200, {"content-type": "application/json"}, b'{"status": "ok"}')
        else:
            _send_not_found(self)

    def do_POST(self) -> None:
        self.server.emulator._handle(self)


def _finishing(handler: BaseHTTPRequestHandler) -> None:
    release = getattr(handler, "finishing", None)
    if release is not None:
        release()


def _send(handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    _finishing(handler)  # headers are buffered until end_headers: nothing has reached the client yet
    handler.end_headers()
    handler.wfile.write(body)


def _send_not_found(handler: BaseHTTPRequestHandler) -> None:
    body = {"error": {"message": f"Unknown route {handler.path}", "type": "invalid_request_error", "param": None}}
    _send(handler, 404, {"content-type": "application/json"}, json.dumps(body).encode())


def _drop(handler: BaseHTTPRequestHandler, *, reset: bool) -> None:
    """End the connection without (the rest of) an answer: RST if ``reset``, otherwise a plain close."""
    handler.close_connection = True
    connection = handler.connection
    _finishing(handler)
    with contextlib.suppress(OSError):
        if reset:
            # Linger 0 turns the close into an RST: the client sees "connection reset by peer".
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
        else:
            connection.shutdown(socket.SHUT_RDWR)


def _route(path: str, raw: bytes) -> _Route | None:
    parts = urlsplit(path)
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        parsed = {}
    body: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
    stream = body.get("stream") is True
    if parts.path in ("/v1/chat/completions", "/chat/completions"):
        return _Route("openai", str(body.get("model", "")), stream, body, parts.path)
    if match := _AZURE_PATH.match(parts.path):
        return _Route("openai", match.group(1), stream, body, parts.path)
    if parts.path in ("/v1/messages", "/messages"):
        return _Route("anthropic", str(body.get("model", "")), stream, body, parts.path)
    if match := _GEMINI_PATH.match(parts.path):
        streaming = match.group(2) == "streamGenerateContent"
        return _Route("gemini", match.group(1), streaming, body, parts.path)
    return None


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class ProviderEmulator:
    """A scripted OpenAI / Anthropic / Gemini endpoint on a local port, for tests, demos and soak runs.

    Use as a context manager or ``start()``/``stop()``. All methods are thread-safe and may be called while
    requests are in flight::

        with ProviderEmulator() as emu:
            emu.script("gpt-x", [Fault.rate_limit(0.2), Success("hi")])
            litellm.completion(messages=[...], **emu.litellm_kwargs("openai", "gpt-x"))  # RateLimitError
            assert emu.count("gpt-x") == 1
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` drives the token buckets and the request timestamps (latency and hangs are real sleeps):
        pass a fake one (``FakeClock().now``) to test rate limits without depending on how fast requests go."""
        self.host = host
        self.verbose = verbose
        self._clock = clock
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._records: list[RequestRecord] = []
        self._scripts: dict[str, deque[Behaviour]] = {}
        self._defaults: dict[str | None, Behaviour] = {}
        self._buckets: dict[str | None, _Bucket] = {}
        self._chaos: dict[str | None, _Chaos] = {}
        self._in_flight: dict[str | None, int] = {}
        self._peak: dict[str | None, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns ``self`` so ``ProviderEmulator().start()`` reads well."""
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = _Server((self.host, self._requested_port), self)
        self._server = server
        # stop() waits up to one poll interval: keep it short, tests start and stop an emulator each.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="provider-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release held (hanging) requests and close open connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (also the Anthropic ``api_base``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """The OpenAI ``api_base``: ``.../v1``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base(self) -> str:
        """The Anthropic ``api_base``: LiteLLM appends ``/v1/messages`` itself."""
        return self.base_url

    @property
    def gemini_base(self) -> str:
        """The Gemini ``api_base``: ``.../v1beta``."""
        return f"{self.base_url}/v1beta"

    def api_base(self, provider: ProviderFormat) -> str:
        """The ``api_base`` LiteLLM needs for ``provider``."""
        return {"openai": self.openai_base, "anthropic": self.anthropic_base, "gemini": self.gemini_base}[provider]

    def litellm_kwargs(self, provider: ProviderFormat, model: str) -> dict[str, Any]:
        """Keyword arguments for ``litellm.completion`` aimed at this emulator, with the SDK's own retries off.

        Without ``max_retries=0, num_retries=0`` the OpenAI client inside LiteLLM retries 429s and 5xx twice
        by itself, and the emulator would count three requests for one call.
        """
        return {
            "model": f"{provider}/{_key(model)}",
            "api_base": self.api_base(provider),
            "api_key": "test-key",
            "max_retries": 0,
            "num_retries": 0,
        }

    # --- scripting -------------------------------------------------------------------------------------------

    def script(self, model: str, behaviours: Behaviour | Iterable[Behaviour]) -> None:
        """Queue behaviours for ``model``'s next requests, one per request, after any already queued."""
        items = [behaviours] if isinstance(behaviours, Success | Fault) else list(behaviours)
        key = _key(model) or ""
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(items)

    def set_default(self, model: str | None, behaviour: Behaviour) -> None:
        """How ``model`` (``None``: every model) answers once its script is used up."""
        with self._lock:
            self._defaults[_key(model)] = behaviour

    def rate_limit(self, model: str | None, rps: float, burst: int = 1) -> None:
        """Enforce a token bucket of ``rps`` requests a second (``burst`` at once) on ``model``.

        ``None`` puts one bucket over all models (an account-wide limit). A request over the limit gets the
        provider's 429 with Retry-After set to the time until the next token, and consumes no script entry.
        """
        if rps <= 0 or burst < 1:
            raise ValueError("rps must be positive and burst at least 1")
        with self._lock:
            self._buckets[_key(model)] = _Bucket(float(rps), float(burst), float(burst), self._clock())

    def set_fault_rate(
        self,
        rate: float,
        faults: Sequence[Behaviour] | None = None,
        *,
        seed: int | None = None,
        model: str | None = None,
    ) -> None:
        """Fail a fraction ``rate`` of unscripted requests with a fault drawn from ``faults``, for soak runs.

        ``seed`` makes the draws reproducible (for a given arrival order). The default mix is a 429 with a
        0.1 s Retry-After, 500, 502, the provider's overload signal, and a connection reset.
        """
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(faults) if faults else _default_faults()
        with self._lock:
            self._chaos[_key(model)] = _Chaos(rate, chosen, random.Random(seed))

    def pending(self, model: str) -> int:
        """Scripted behaviours not yet consumed for ``model``."""
        with self._lock:
            return len(self._scripts.get(_key(model) or "", ()))

    # --- reporting -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._records)

    def count(self, model: str | None = None, *, outcome: str | None = None) -> int:
        """How many requests arrived (for ``model``, with ``outcome``, when given)."""
        key = _key(model)
        with self._lock:
            return sum(
                1
                for record in self._records
                if (key is None or record.model == key) and (outcome is None or record.outcome == outcome)
            )

    def in_flight(self, model: str | None = None) -> int:
        """Requests being answered right now (for ``model``; ``None``: all)."""
        with self._lock:
            return self._in_flight.get(_key(model), 0)

    def peak_in_flight(self, model: str | None = None) -> int:
        """The most requests ever answered at once (for ``model``; ``None``: all)."""
        with self._lock:
            return self._peak.get(_key(model), 0)

    def clear_requests(self) -> None:
        """Forget the received requests and the in-flight peaks; keep the scripts and settings."""
        with self._lock:
            self._records.clear()
            self._peak = dict(self._in_flight)

    def reset(self) -> None:
        """Back to a fresh emulator: no records, scripts, defaults, rate limits or fault rates."""
        with self._lock:
            self._ids = itertools.count(1)
            self._records.clear()
            self._scripts.clear()
            self._defaults.clear()
            self._buckets.clear()
            self._chaos.clear()
            self._peak = dict(self._in_flight)

    # --- serving ---------------------------------------------------------------------------------------------

    def _decide(self, model: str) -> tuple[Behaviour, Source, int]:
        """Pick the answer for one request (called with the lock held)."""
        limit = 60
        now = self._clock()
        for bucket in (self._buckets.get(model), self._buckets.get(None)):
            if bucket is None:
                continue
            wait = bucket.take(now)
            limit = max(1, round(bucket.rate * 60))
            if wait is not None:
                return Fault.rate_limit(math.ceil(wait * 1000) / 1000), "bucket", limit
        queue = self._scripts.get(model)
        if queue:
            return queue.popleft(), "script", limit
        chaos = self._chaos.get(model) or self._chaos.get(None)
        if chaos is not None and chaos.rng.random() < chaos.rate:
            return chaos.rng.choice(chaos.faults), "random", limit
        behaviour = self._defaults.get(model) or self._defaults.get(None) or Success()
        return behaviour, "default", limit

    def _admit(self, route: _Route, arrived: float) -> tuple[Behaviour, int, FaultResponse | None, str]:
        with self._lock:
            request_id = f"emu{next(self._ids):06d}"
            behaviour, source, limit = self._decide(route.model)
            answer = self._error_for(behaviour, route, request_id, limit)
            self._records.append(
                RequestRecord(
                    index=len(self._records),
                    model=route.model,
                    provider=route.provider,
                    path=route.path,
                    stream=route.stream,
                    timestamp=arrived,
                    outcome=behaviour.kind,
                    source=source,
                    status=_status_of(behaviour, answer),
                    body=route.body,
                )
            )
            for key in (None, route.model):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
                self._peak[key] = max(self._peak.get(key, 0), self._in_flight[key])
        return behaviour, limit, answer, request_id

    def _release(self, model: str) -> None:
        with self._lock:
            for key in (None, model):
                self._in_flight[key] = self._in_flight.get(key, 0) - 1

    @staticmethod
    def _error_for(behaviour: Behaviour, route: _Route, request_id: str, limit: int) -> FaultResponse | None:
        """The HTTP answer of a fault that answers with a status and body (None: success, transport faults)."""
        if not isinstance(behaviour, Fault):
            return None
        fault = behaviour
        if fault.kind == "stream_error" and fault.error is not None and not route.stream:
            fault = fault.error  # a plain request cannot fail mid-stream: it gets the error itself
        if fault.kind == "http":
            return FaultResponse(fault.status or 500, {}, dict(fault.headers))
        if _is_error_kind(fault.kind):
            return error_response(
                route.provider,
                fault.kind,
                route.model,
                request_id,
                status=fault.status,
                retry_after=fault.retry_after,
                limit=limit,
            )
        return None

    def _pause(self, seconds: float | None) -> bool:
        """Sleep ``seconds`` (``None``: until stop); False if the emulator is stopping."""
        if seconds is not None and seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _handle(self, handler: _Handler) -> None:
        arrived = self._clock()
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        route = _route(handler.path, raw)
        if route is None:
            _send_not_found(handler)
            return
        behaviour, limit, answer, request_id = self._admit(route, arrived)
        released = threading.Event()

        def release_once() -> None:
            if not released.is_set():
                released.set()
                self._release(route.model)

        handler.finishing = release_once
        try:
            self._answer(handler, route, behaviour, answer, request_id, limit)
        except OSError:
            handler.close_connection = True  # the client went away (timed out, cancelled): nothing to answer
        finally:
            handler.finishing = None
            release_once()

    def _answer(
        self,
        handler: _Handler,
        route: _Route,
        behaviour: Behaviour,
        answer: FaultResponse | None,
        request_id: str,
        limit: int,
    ) -> None:
        if behaviour.latency and not self._pause(behaviour.latency):
            _drop(handler, reset=False)
            return
        headers = {"content-type": "application/json", _request_id_header(route.provider): request_id}
        if isinstance(behaviour, Success):
            self._succeed(handler, route, behaviour, headers, request_id)
            return
        fault = behaviour
        if answer is not None and fault.kind != "http" and answer.status < 400 and route.stream:
            self._stream(handler, route, [stream_error_event(route.provider, answer)], request_id)
        elif answer is not None:
            body = fault.body if fault.kind == "http" else json.dumps(answer.body).encode()
            _send(handler, answer.status, {**headers, **answer.headers}, body)
        elif fault.kind == "hang":
            self._pause(fault.seconds)
            _drop(handler, reset=False)
        elif fault.kind == "reset":
            _drop(handler, reset=True)
        elif fault.kind == "malformed":
            if route.stream:
                events = stream_events(route.provider, route.model, ["x"], 10, 1, request_id)
                head = list(itertools.takewhile(lambda event: not event.content, events))
                self._stream(handler, route, [*head, malformed_event(route.provider)], request_id)
            else:
                _send(handler, 200, headers, _MALFORMED)
        elif fault.kind in ("stream_drop", "stream_error"):
            self._fail_stream(handler, route, fault, headers, request_id, limit)

    def _succeed(self, handler: _Handler, route: _Route, ok: Success, headers: dict[str, str], request_id: str) -> None:
        pieces = ok.pieces()
        completion = ok.completion_tokens if ok.completion_tokens is not None else len(pieces)
        if route.stream:
            events = stream_events(
                route.provider,
                route.model,
                pieces,
                ok.prompt_tokens,
                completion,
                request_id,
                include_usage=_include_usage(route.body),
            )
            self._stream(handler, route, events, request_id, delay=ok.chunk_delay)
            return
        body = success_body(route.provider, route.model, "".join(pieces), ok.prompt_tokens, completion, request_id)
        _send(handler, 200, headers, json.dumps(body).encode())

    def _fail_stream(
        self,
        handler: _Handler,
        route: _Route,
        fault: Fault,
        headers: dict[str, str],
        request_id: str,
        limit: int,
    ) -> None:
        pieces = split_text(fault.text)
        if not route.stream:  # stream_drop on a plain request: half the body, then the connection goes
            body = json.dumps(
                success_body(route.provider, route.model, fault.text, 10, len(pieces), request_id)
            ).encode()
            handler.send_response(200)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("content-length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            _drop(handler, reset=False)
            return
        events = stream_events(route.provider, route.model, pieces, 10, len(pieces), request_id)
        cut: list[StreamEvent] = []
        sent = 0
        for event in events:
            if event.content and sent >= fault.after_chunks:
                break
            cut.append(event)
            sent += event.content
        if fault.kind == "stream_drop":
            self._stream(handler, route, cut, request_id, complete=False)
            return
        error = fault.error or Fault.overloaded()
        answer = self._error_for(error, route, request_id, limit)
        if answer is None:  # pragma: no cover - Fault.stream_error validates its error
            raise AssertionError(error)
        payload = error.body if error.kind == "http" else None
        event = StreamEvent(b"data: " + payload + b"\n\n") if payload else stream_error_event(route.provider, answer)
        self._stream(handler, route, [*cut, event], request_id)

    def _stream(
        self,
        handler: _Handler,
        route: _Route,
        events: Sequence[StreamEvent],
        request_id: str,
        *,
        delay: float = 0.0,
        complete: bool = True,
    ) -> None:
        """Send ``events`` as a chunked SSE body; without ``complete`` the body is cut off (no final chunk)."""
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream; charset=utf-8")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("transfer-encoding", "chunked")
        handler.send_header(_request_id_header(route.provider), request_id)
        handler.end_headers()
        for index, event in enumerate(events):
            if index and delay and event.content and not self._pause(delay):
                complete = False
                break
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(event.data), event.data))
        if complete:
            _finishing(handler)
            handler.wfile.write(b"0\r\n\r\n")
        else:
            _drop(handler, reset=False)


def _request_id_header(provider: ProviderFormat) -> str:
    return {"openai": "x-request-id", "anthropic": "request-id", "gemini": "x-goog-request-id"}[provider]


def _status_of(behaviour: Behaviour, answer: FaultResponse | None) -> int | None:
    if answer is not None:
        return answer.status
    if behaviour.kind in ("hang", "reset"):
        return None
    return 200  # success, malformed, and streams that fail after their 200


def _is_error_kind(kind: str) -> TypeGuard[ErrorKind]:
    return kind in _ERROR_KINDS


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
