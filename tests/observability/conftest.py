"""OpenTelemetry's SDK with in-memory exporters, wired to our instrumentation for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_helpers import OTel

from langchain_ailib_resilience.observability import instrument


@pytest.fixture
def otel() -> Iterator[OTel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield OTel(exporter, reader)
    finally:
        instrument()  # back to the global providers (a no-op until an SDK is configured)
        meter_provider.shutdown()
        tracer_provider.shutdown()
