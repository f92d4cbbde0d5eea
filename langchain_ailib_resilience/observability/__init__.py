"""Observability: logging, OpenTelemetry and the live view, all fed by the one event stream (``events``).

- ``logging``: the ``langchain_ailib_resilience`` logger reports retries, fallbacks, circuit changes and
  rejections (subscribed when the package is imported; no handler added).
- OpenTelemetry: ``instrument()`` / ``uninstrument()``; installed automatically when ``opentelemetry-api`` is
  importable, recording nothing until the application configures an SDK.
- The live view: ``start_watch()`` serves this process's state for ``ailib-resilience watch``; ``snapshot()``
  and ``render()`` for your own screens.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from ._logging import install_logging, uninstall_logging
from ._watch import WatchServer, render, set_learned_limits_source, snapshot, start_watch

if TYPE_CHECKING:
    from ._otel import OTelInstrumentation


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None) -> OTelInstrumentation:
    """Record OpenTelemetry spans and metrics with these providers (default: the global ones)."""
    from ._otel import instrument as _instrument

    return _instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def uninstrument() -> None:
    """Stop recording OpenTelemetry spans and metrics."""
    if importlib.util.find_spec("opentelemetry") is not None:
        from ._otel import uninstrument as _uninstrument

        _uninstrument()


def install_defaults() -> None:
    """What importing the package turns on: the logger, and OpenTelemetry when its API is installed."""
    install_logging()
    if importlib.util.find_spec("opentelemetry") is not None:
        from . import _otel

        if _otel._default is None:
            _otel.instrument()


__all__ = [
    "WatchServer",
    "install_defaults",
    "install_logging",
    "instrument",
    "render",
    "set_learned_limits_source",
    "snapshot",
    "start_watch",
    "uninstall_logging",
    "uninstrument",
]
