"""What the in-memory OpenTelemetry exporters recorded, in the shapes the tests compare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class OTel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def chat_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name.startswith("chat ")]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every data point of ``metric`` (a sum's value, a histogram's count/sum)."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name != metric:
                        continue
                    for point in m.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = (point.count, point.sum)  # type: ignore[attr-defined]
                        found.append((dict(point.attributes or {}), value))
        return found

    def total(self, metric: str, **attributes: Any) -> Any:
        """Sum of ``metric``'s points whose attributes include ``attributes`` (dots spelt as ``__``)."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        return sum(
            value
            for attrs, value in self.points(metric)
            if all(attrs.get(key) == value_ for key, value_ in wanted.items())
        )

    def gauge(self, metric: str, target: str) -> Any:
        values = [value for attrs, value in self.points(metric) if attrs.get("resilience.target") == target]
        return values[-1] if values else None
