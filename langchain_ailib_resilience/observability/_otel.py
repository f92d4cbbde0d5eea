"""OpenTelemetry spans and metrics from resilience events, through ``opentelemetry-api`` only.

Installed automatically when ``opentelemetry-api`` is importable, and a no-op until the application configures
an SDK (``trace.set_tracer_provider`` / ``metrics.set_meter_provider``): until then a call costs one check of
two module globals and builds no event. ``instrument(tracer_provider=..., meter_provider=...)`` uses explicit
providers instead (tests, apps that keep providers out of the globals).

Spans (GenAI semantic conventions where they apply): one ``resilience.call`` span per call, parent of one
``chat {model}`` span per attempt that reached a provider, with ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``server.address``/``server.port``, ``resilience.target``,
``resilience.attempt`` (1-based) and, on failure, ``error.type`` = the code's name (``rate_limited``, ...).
Spans are started with explicit parents and not made current, so nothing is attached to the caller's context
across an ``await`` or a stream's ``yield``.

Metrics, each with ``resilience.target`` (and ``error.type`` where there is an error): ``resilience.attempts``
(``resilience.outcome`` = success | error | rejected), ``resilience.retries``, ``resilience.fallbacks``,
``resilience.rejections`` (counters), ``resilience.rate_limit.wait`` (histogram, s), ``resilience.inflight`` and
``resilience.circuit.state`` (observable gauges read from every live registry; 0 closed, 1 half-open, 2 open).

No attribute carries an error message, a URL's credentials or query, or an API key: only names, codes and
numbers; the one free-text field, a failed span's status description, is redacted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from .. import events
from ..errors.redact import redact
from ..events import EventListener, ResilienceEvent
from ..registry import live_registries
from ..targets import split_target

SCOPE = "langchain_ailib_resilience"
CIRCUIT_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}

# LiteLLM provider names → the GenAI conventions' gen_ai.provider.name values, where they differ.
_PROVIDER_NAMES = {
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}


def _sdk_configured() -> bool:
    """Whether the application set a global tracer or meter provider (both are set-once)."""
    # The API keeps them in module globals: reading those costs nanoseconds, get_tracer_provider() reads
    # os.environ. tests/observability checks that the API still has them. Inlined in OTelInstrumentation.
    return trace._TRACER_PROVIDER is not None or _metrics_internal._METER_PROVIDER is not None


def endpoint_attributes(target: str, detail: dict[str, Any]) -> dict[str, Any]:
    """``gen_ai.*`` and ``server.*`` attributes of an attempt on ``target`` (names only, never credentials)."""
    provider, model = detail.get("provider"), detail.get("model")
    return dict(_endpoint_attributes(target, provider and str(provider), model and str(model)))


@functools.lru_cache(maxsize=1024)  # a process calls few targets, each many times: parse each once
def _endpoint_attributes(target: str, provider: str | None, model: str | None) -> tuple[tuple[str, Any], ...]:
    model_part, base, _deployment = split_target(target)
    head, sep, tail = model_part.partition("/")
    if sep and head and tail:
        provider = provider or head
        model = model or tail
    model = model or model_part
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": str(model)}
    if provider:
        attributes["gen_ai.provider.name"] = _PROVIDER_NAMES.get(str(provider), str(provider))
    if base:
        try:
            parts = urlsplit(base)
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if host:
            attributes["server.address"] = host
            if port is not None:
                attributes["server.port"] = port
    return tuple(attributes.items())


class _Instruments:
    """The metric instruments, created once per meter."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.attempts = meter.create_counter(
            "resilience.attempts", unit="{attempt}", description="Attempts, by outcome: success, error, rejected"
        )
        self.retries = meter.create_counter("resilience.retries", unit="{retry}", description="Retries scheduled")
        self.fallbacks = meter.create_counter(
            "resilience.fallbacks", unit="{fallback}", description="Calls moved on to the next target"
        )
        self.rejections = meter.create_counter(
            "resilience.rejections", unit="{rejection}", description="Requests refused by the gate before sending"
        )
        self.rate_limit_wait = meter.create_histogram(
            "resilience.rate_limit.wait", unit="s", description="Time waited for a rate token or in-flight permit"
        )
        meter.create_observable_gauge(
            "resilience.inflight", [_observe_inflight], unit="{request}", description="Requests in flight"
        )
        meter.create_observable_gauge(
            "resilience.circuit.state",
            [_observe_circuits],
            unit="1",
            description="Circuit state: 0 closed, 1 half-open, 2 open",
        )


def _observe_inflight(options: CallbackOptions) -> Iterable[Observation]:
    for name, signals in _all_signals():
        yield Observation(signals.current_inflight, {"resilience.target": name})


def _observe_circuits(options: CallbackOptions) -> Iterable[Observation]:
    for name, signals in _all_signals():
        yield Observation(CIRCUIT_STATE_VALUES.get(signals.circuit_state, 0), {"resilience.target": name})


def _all_signals() -> Iterable[tuple[str, Any]]:
    for registry in live_registries():
        for name in registry.targets():
            signals = registry.signals(name)
            if signals is not None:
                yield name, signals


class OTelInstrumentation(events.Hook):
    """Turns each call's events into spans and metrics. ``install()`` registers it; ``uninstall()`` removes it."""

    def __init__(self, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None):
        self.explicit = tracer_provider is not None or meter_provider is not None
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self.meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self.instruments = _Instruments(self.meter)

    def __call__(self) -> EventListener | None:
        """The call observer: a listener for a call starting now, or ``None`` while nothing would record it."""
        # _sdk_configured(), inlined: this runs at the start of every call of the process.
        if self.explicit or trace._TRACER_PROVIDER is not None or _metrics_internal._METER_PROVIDER is not None:
            return _CallRecorder(self)
        return None

    def _attach(self) -> Callable[[], None]:
        return events.observe_calls(self.__call__)  # a bound method is quicker to call than the instance


class _CallRecorder:
    """One call's spans and metrics, fed that call's events in order."""

    __slots__ = ("attempt_span", "call_span", "instruments", "parent", "started", "tracer")

    def __init__(self, otel: OTelInstrumentation) -> None:
        self.tracer = otel.tracer
        self.instruments = otel.instruments
        self.parent = otel_context.get_current()
        self.started = time.time_ns()
        self.call_span: Span | None = None
        self.attempt_span: Span | None = None

    def _call(self, target: str) -> Span:
        if self.call_span is None:
            self.call_span = self.tracer.start_span(
                "resilience.call",
                context=self.parent,
                kind=SpanKind.INTERNAL,
                attributes={"resilience.target": target},
                start_time=self.started,
            )
        return self.call_span

    def __call__(self, event: ResilienceEvent) -> None:
        kind = event.kind
        target = event.target
        inst = self.instruments
        if kind == "attempt":
            self._end_attempt(None)
            call = self._call(target)
            attributes = endpoint_attributes(target, event.detail)
            attributes["resilience.target"] = target
            attributes["resilience.attempt"] = event.attempt
            self.attempt_span = self.tracer.start_span(
                f"chat {attributes['gen_ai.request.model']}",
                context=trace.set_span_in_context(call, self.parent),
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )
        elif kind in ("retry", "give_up"):
            inst.attempts.add(1, _error_attrs(target, event, outcome="error"))
            self._end_attempt(event)
            if kind == "retry":
                inst.retries.add(1, _error_attrs(target, event))
        elif kind == "success":
            inst.attempts.add(1, {"resilience.target": target, "resilience.outcome": "success"})
            self._end_attempt(None)
            call = self._call(target)
            call.set_attribute("resilience.answered_by", target)
            call.end()
        elif kind == "failure":
            if self.attempt_span is not None:  # the call broke mid-attempt: mid-stream, or cancelled
                inst.attempts.add(1, _error_attrs(target, event, outcome="error"))
                self._end_attempt(event)
            call = self._call(target)
            _set_error(call, event)
            call.end()
        elif kind == "rejected":
            attributes = _error_attrs(target, event)
            attributes["resilience.rejection.reason"] = str(event.detail.get("reason", "other"))
            inst.rejections.add(1, attributes)
            inst.attempts.add(1, {**attributes, "resilience.outcome": "rejected"})
            self._call(target).add_event("resilience.rejected", attributes)
        elif kind == "fallback":
            attributes = _error_attrs(target, event)
            attributes["resilience.fallback.target"] = str(event.detail.get("next_target", ""))
            inst.fallbacks.add(1, attributes)
            self._call(target).add_event("resilience.fallback", attributes)
        elif kind == "rate_limit_wait" and event.delay is not None:
            inst.rate_limit_wait.record(event.delay, {"resilience.target": target})

    def _end_attempt(self, event: ResilienceEvent | None) -> None:
        span = self.attempt_span
        if span is None:
            return
        self.attempt_span = None
        if event is not None:
            _set_error(span, event)
            if event.delay is not None and event.kind == "retry":
                span.set_attribute("resilience.retry.delay", event.delay)
        span.end()


def _error_attrs(target: str, event: ResilienceEvent, outcome: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"resilience.target": target}
    if event.code is not None:
        attributes["error.type"] = event.code.error_name
    if outcome is not None:
        attributes["resilience.outcome"] = outcome
    return attributes


def _set_error(span: Span, event: ResilienceEvent) -> None:
    error_type = event.code.error_name if event.code is not None else "unknown"
    span.set_attribute("error.type", error_type)
    if event.detail.get("mid_stream"):
        span.set_attribute("resilience.mid_stream", True)
    message = redact(str(event.error)) if event.error is not None else error_type
    span.set_status(Status(StatusCode.ERROR, message))


_default: OTelInstrumentation | None = None


def instrument(
    *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> OTelInstrumentation:
    """Record spans and metrics with these providers (default: the global ones, once the app sets them).

    Replaces the instrumentation installed before; returns the new one (``.uninstall()`` stops it).
    """
    global _default
    if _default is not None:
        _default.uninstall()
    _default = OTelInstrumentation(tracer_provider, meter_provider).install()
    return _default


def uninstrument() -> None:
    """Stop recording spans and metrics."""
    global _default
    if _default is not None:
        _default.uninstall()
        _default = None
