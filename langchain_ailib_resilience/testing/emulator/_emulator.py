"""``ProviderEmulator``: scripting, reporting, and answering each request in its provider's format."""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from ._behaviours import (
    DEFAULT_TEXT,
    Behaviour,
    Fault,
    RequestRecord,
    Source,
    Success,
    default_faults,
    is_error_kind,
    logged_body,
)
from ._headers import limit_headers, resolve, retry_headers
from ._scheduling import Chaos, Cost, Dimension, HeaderForm, Limits, build_limits, request_cost
from ._server import EmulatorHandler, EmulatorServer, drop, finishing, send, send_not_found
from ._tools import plan_success
from ._wire import (
    AZURE_PATH,
    MALFORMED_BODY,
    FaultResponse,
    ProviderFormat,
    Route,
    StreamEvent,
    error_response,
    include_usage,
    malformed_event,
    model_key,
    request_id_header,
    route_of,
    split_text,
    status_of,
    stream_error_event,
    stream_events,
    success_body,
)


@dataclass(frozen=True, slots=True)
class _Decision:
    """How one request is answered, and what the answer says about the limits."""

    behaviour: Behaviour
    source: Source
    cost: Cost
    limit: int = 60  # the per-minute limit an error message names
    dimension: Dimension = "requests"
    form: HeaderForm = "none"  # resolved: never "auto"
    stated: Mapping[str, str] | None = field(default=None)  # the limit headers; None: the model has no limits


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
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._records: list[RequestRecord] = []
        self._scripts: dict[str, deque[Behaviour]] = {}
        self._defaults: dict[str | None, Behaviour] = {}
        self._limits: dict[str | None, Limits] = {}
        self._chaos: dict[str | None, Chaos] = {}
        self._in_flight: dict[str | None, int] = {}
        self._peak: dict[str | None, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns ``self`` so ``ProviderEmulator().start()`` reads well."""
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = EmulatorServer((self.host, self._requested_port), self)
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
            "model": f"{provider}/{model_key(model)}",
            "api_base": self.api_base(provider),
            "api_key": "test-key",
            "max_retries": 0,
            "num_retries": 0,
        }

    # --- scripting -------------------------------------------------------------------------------------------

    def script(self, model: str, behaviours: Behaviour | Iterable[Behaviour]) -> None:
        """Queue behaviours for ``model``'s next requests, one per request, after any already queued."""
        items = [behaviours] if isinstance(behaviours, Success | Fault) else list(behaviours)
        key = model_key(model) or ""
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(items)

    def set_default(self, model: str | None, behaviour: Behaviour) -> None:
        """How ``model`` (``None``: every model) answers once its script is used up."""
        with self._lock:
            self._defaults[model_key(model)] = behaviour

    def rate_limit(
        self,
        model: str | None,
        rps: float | None = None,
        burst: int = 1,
        *,
        tokens_per_minute: float | None = None,
        input_tokens_per_minute: float | None = None,
        output_tokens_per_minute: float | None = None,
        token_burst: float | None = None,
        headers: HeaderForm = "auto",
    ) -> None:
        """Enforce limits on ``model``: ``rps`` requests a second (``burst`` at once) and tokens per minute.

        ``None`` puts the limits over all models (an account's). Each limit is a token bucket on the
        emulator's clock. ``burst=1`` is a strict spacing: a request less than ``1/rps`` after the last one
        admitted gets a 429 whose ``retry-after-ms`` says how early it was. A request counts its prompt (one
        token per 4 characters) and its ``max_tokens`` (16 when it states none) at arrival, as Azure does,
        against ``tokens_per_minute`` and the input/output limits (Anthropic's ITPM/OTPM); a token bucket holds
        ``token_burst`` tokens, by default ten seconds of its limit. A request over any limit gets the
        provider's 429 with Retry-After set to the time until it would pass, and consumes no script entry and
        no tokens.

        Every answer for the model states its limits in ``headers`` form (see ``HeaderForm``; ``"auto"``: the
        route's provider's own), so clients can learn them: remaining counts, and resets as the time until
        the bucket is full again.
        """
        limits = build_limits(
            rps,
            burst,
            {
                "tokens": tokens_per_minute,
                "input_tokens": input_tokens_per_minute,
                "output_tokens": output_tokens_per_minute,
            },
            token_burst,
            headers,
        )
        with self._lock:
            self._limits[model_key(model)] = limits

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
        chosen = tuple(faults) if faults else default_faults()
        with self._lock:
            self._chaos[model_key(model)] = Chaos(rate, chosen, random.Random(seed))

    def pending(self, model: str) -> int:
        """Scripted behaviours not yet consumed for ``model``."""
        with self._lock:
            return len(self._scripts.get(model_key(model) or "", ()))

    # --- reporting -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._records)

    def count(self, model: str | None = None, *, outcome: str | None = None) -> int:
        """How many requests arrived (for ``model``, with ``outcome``, when given)."""
        key = model_key(model)
        with self._lock:
            return sum(
                1
                for record in self._records
                if (key is None or record.model == key) and (outcome is None or record.outcome == outcome)
            )

    def in_flight(self, model: str | None = None) -> int:
        """Requests being answered right now (for ``model``; ``None``: all)."""
        with self._lock:
            return self._in_flight.get(model_key(model), 0)

    def peak_in_flight(self, model: str | None = None) -> int:
        """The most requests ever answered at once (for ``model``; ``None``: all)."""
        with self._lock:
            return self._peak.get(model_key(model), 0)

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
            self._limits.clear()
            self._chaos.clear()
            self._peak = dict(self._in_flight)

    # --- serving ---------------------------------------------------------------------------------------------

    def _decide(self, route: Route) -> _Decision:
        """Pick the answer for one request (called with the lock held)."""
        now = self._clock()
        cost = request_cost(route.body)
        limits = [found for found in (self._limits.get(route.model), self._limits.get(None)) if found is not None]
        if limits:
            form = resolve(limits[0].headers, route.provider, AZURE_PATH.match(route.path) is not None)
            limit = next((rpm for found in limits if (rpm := found.requests_per_minute) is not None), 60)
            for index, found in enumerate(limits):
                refusal = found.admit(now, cost)
                if refusal is None:
                    continue
                for earlier in limits[:index]:
                    earlier.refund(now, cost)
                wait = math.ceil(refusal.wait * 1000 - 1e-6) / 1000  # up to the ms, float noise aside
                return _Decision(
                    Fault.rate_limit(wait),
                    "bucket",
                    cost,
                    max(1, round(refusal.per_minute)),
                    refusal.dimension,
                    form,
                    limit_headers(form, limits[0].readings(now), time.time()),
                )
            stated = limit_headers(form, limits[0].readings(now), time.time())
            behaviour, source = self._scripted(route.model)
            return _Decision(behaviour, source, cost, limit, "requests", form, stated)
        behaviour, source = self._scripted(route.model)
        return _Decision(behaviour, source, cost)

    def _scripted(self, model: str) -> tuple[Behaviour, Source]:
        queue = self._scripts.get(model)
        if queue:
            return queue.popleft(), "script"
        chaos = self._chaos.get(model) or self._chaos.get(None)
        if chaos is not None and chaos.rng.random() < chaos.rate:
            return chaos.rng.choice(chaos.faults), "random"
        return self._defaults.get(model) or self._defaults.get(None) or Success(), "default"

    def _admit(self, route: Route, arrived: float, size: int) -> tuple[_Decision, FaultResponse | None, str]:
        body, truncated = logged_body(route.body, size)
        with self._lock:
            request_id = f"emu{next(self._ids):06d}"
            decision = self._decide(route)
            behaviour = decision.behaviour
            answer = self._error_for(behaviour, route, request_id, decision)
            self._records.append(
                RequestRecord(
                    index=len(self._records),
                    model=route.model,
                    provider=route.provider,
                    path=route.path,
                    stream=route.stream,
                    timestamp=arrived,
                    outcome=behaviour.kind,
                    source=decision.source,
                    status=status_of(behaviour.kind, answer),
                    body=body,
                    body_size=size,
                    body_truncated=truncated,
                    tokens=decision.cost.input_tokens + decision.cost.output_tokens,
                )
            )
            for key in (None, route.model):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
                self._peak[key] = max(self._peak.get(key, 0), self._in_flight[key])
        return decision, answer, request_id

    def _release(self, model: str) -> None:
        with self._lock:
            for key in (None, model):
                self._in_flight[key] = self._in_flight.get(key, 0) - 1

    @staticmethod
    def _error_for(behaviour: Behaviour, route: Route, request_id: str, decision: _Decision) -> FaultResponse | None:
        """The HTTP answer of a fault that answers with a status and body (None: success, transport faults)."""
        if not isinstance(behaviour, Fault):
            return None
        fault = behaviour
        if fault.kind == "stream_error" and fault.error is not None and not route.stream:
            fault = fault.error  # a plain request cannot fail mid-stream: it gets the error itself
        if fault.kind == "http":
            return FaultResponse(fault.status or 500, {}, dict(fault.headers))
        if is_error_kind(fault.kind):
            rate_headers = None
            if fault.kind == "rate_limit" and decision.stated is not None:
                wait = 1.0 if fault.retry_after is None else fault.retry_after
                rate_headers = {**retry_headers(decision.form, wait), **decision.stated}
            return error_response(
                route.provider,
                fault.kind,
                route.model,
                request_id,
                status=fault.status,
                retry_after=fault.retry_after,
                limit=decision.limit,
                dimension=decision.dimension,
                rate_headers=rate_headers,
            )
        return None

    def _pause(self, seconds: float | None) -> bool:
        """Sleep ``seconds`` (``None``: until stop); False if the emulator is stopping."""
        if seconds is not None and seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _handle(self, handler: EmulatorHandler) -> None:
        arrived = self._clock()
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        route = route_of(handler.path, raw)
        if route is None:
            send_not_found(handler)
            return
        decision, answer, request_id = self._admit(route, arrived, len(raw))
        released = threading.Event()

        def release_once() -> None:
            if not released.is_set():
                released.set()
                self._release(route.model)

        handler.finishing = release_once
        try:
            self._answer(handler, route, decision, answer, request_id)
        except OSError:
            handler.close_connection = True  # the client went away (timed out, cancelled): nothing to answer
        finally:
            handler.finishing = None
            release_once()

    def _answer(
        self,
        handler: EmulatorHandler,
        route: Route,
        decision: _Decision,
        answer: FaultResponse | None,
        request_id: str,
    ) -> None:
        behaviour = decision.behaviour
        if behaviour.latency and not self._pause(behaviour.latency):
            drop(handler, reset=False)
            return
        headers = {
            "content-type": "application/json",
            request_id_header(route.provider): request_id,
            **(decision.stated or {}),
        }
        if isinstance(behaviour, Success):
            self._succeed(handler, route, behaviour, headers, request_id)
            return
        fault = behaviour
        if answer is not None and fault.kind != "http" and answer.status < 400 and route.stream:
            self._stream(handler, [stream_error_event(route.provider, answer)], headers)
        elif answer is not None:
            body = fault.body if fault.kind == "http" else json.dumps(answer.body).encode()
            send(handler, answer.status, {**headers, **answer.headers}, body)
        elif fault.kind == "hang":
            self._pause(fault.seconds)
            drop(handler, reset=False)
        elif fault.kind == "reset":
            drop(handler, reset=True)
        elif fault.kind == "malformed":
            if route.stream:
                events = stream_events(route.provider, route.model, ["x"], 10, 1, request_id)
                head = list(itertools.takewhile(lambda event: not event.content, events))
                self._stream(handler, [*head, malformed_event(route.provider)], headers)
            else:
                send(handler, 200, headers, MALFORMED_BODY)
        elif fault.kind in ("stream_drop", "stream_error"):
            self._fail_stream(handler, route, fault, headers, request_id, decision)

    def _succeed(
        self, handler: EmulatorHandler, route: Route, ok: Success, headers: dict[str, str], request_id: str
    ) -> None:
        scripted_text = ok.text != DEFAULT_TEXT or ok.chunks is not None
        planned = plan_success(
            route.provider, route.body, "".join(ok.pieces()), ok.tool_calls, request_id, scripted_text=scripted_text
        )
        pieces = ok.pieces() if planned.text == "".join(ok.pieces()) else split_text(planned.text)
        if not planned.text:
            pieces = [""]
        completion = ok.completion_tokens if ok.completion_tokens is not None else len(pieces)
        if route.stream:
            events = stream_events(
                route.provider,
                route.model,
                pieces,
                ok.prompt_tokens,
                completion,
                request_id,
                include_usage=include_usage(route.body),
                tool_calls=planned.tool_calls,
            )
            self._stream(handler, events, headers, delay=ok.chunk_delay)
            return
        body = success_body(
            route.provider,
            route.model,
            planned.text,
            ok.prompt_tokens,
            completion,
            request_id,
            tool_calls=planned.tool_calls,
        )
        send(handler, 200, headers, json.dumps(body).encode())

    def _fail_stream(
        self,
        handler: EmulatorHandler,
        route: Route,
        fault: Fault,
        headers: dict[str, str],
        request_id: str,
        decision: _Decision,
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
            drop(handler, reset=False)
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
            self._stream(handler, cut, headers, complete=False)
            return
        error = fault.error or Fault.overloaded()
        answer = self._error_for(error, route, request_id, decision)
        if answer is None:  # pragma: no cover - Fault.stream_error validates its error
            raise AssertionError(error)
        payload = error.body if error.kind == "http" else None
        event = StreamEvent(b"data: " + payload + b"\n\n") if payload else stream_error_event(route.provider, answer)
        self._stream(handler, [*cut, event], headers)

    def _stream(
        self,
        handler: EmulatorHandler,
        events: Sequence[StreamEvent],
        headers: Mapping[str, str],
        *,
        delay: float = 0.0,
        complete: bool = True,
    ) -> None:
        """Send ``events`` as a chunked SSE body (with ``headers``, bar their content type); without
        ``complete`` the body is cut off (no final chunk)."""
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream; charset=utf-8")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("transfer-encoding", "chunked")
        for name, value in headers.items():
            if name != "content-type":
                handler.send_header(name, value)
        handler.end_headers()
        for index, event in enumerate(events):
            if index and delay and event.content and not self._pause(delay):
                complete = False
                break
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(event.data), event.data))
        if complete:
            finishing(handler)
            handler.wfile.write(b"0\r\n\r\n")
        else:
            drop(handler, reset=False)
