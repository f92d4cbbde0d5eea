"""The live view: what every target is doing now, from this process or another one.

- ``WatchRecorder`` keeps the recent decisions (retries, fallbacks, rejections, circuit changes, failures) and
  per-target counts, as a process-wide event subscriber.
- ``snapshot()`` reads every live registry's targets (circuit, in-flight, rate tokens left, learned limits when
  the limiter reports them) plus the recorder's counts and recent decisions, as plain JSON-friendly data.
- ``start_watch()`` serves that snapshot on ``http://127.0.0.1:PORT/snapshot`` from a daemon thread, so
  ``ailib-resilience watch --url ...`` can draw it live; one call in any app.
- ``render(snapshot)`` draws it with rich (a table per target, the recent decisions below).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import events
from ..events import ResilienceEvent
from ..registry import live_registries

_RECENT_KINDS = frozenset({"retry", "fallback", "rejected", "state_change", "give_up", "failure"})
_COUNTED = ("retry", "fallback", "rejected", "give_up", "failure")

# Learned limits (adaptive pacing): the rate an adaptive limiter learned (``rate_source`` "headers" or
# "429-feedback" in the target's signals), its spacing margin, and a provider's pause still running; shown under
# this field. A source registered with ``set_learned_limits_source`` takes precedence.
LEARNED_FIELD = "learned_limits"
_LEARNED_SOURCES = frozenset({"headers", "429-feedback"})
_learned_source: Callable[[str], Mapping[str, Any] | None] | None = None


def set_learned_limits_source(source: Callable[[str], Mapping[str, Any] | None] | None) -> None:
    """Where the view reads a target's learned limits from (``None``: from its signals' ``learned_limits``)."""
    global _learned_source
    _learned_source = source


class WatchRecorder(events.Hook):
    """Recent decisions and per-target counts, kept from every event in the process."""

    def __init__(self, keep: int = 40) -> None:
        self._lock = threading.Lock()
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.counts: dict[str, Counter[str]] = {}

    def __call__(self, event: ResilienceEvent) -> None:
        if event.kind not in _RECENT_KINDS:
            return
        entry = {"time": time.time(), "kind": event.kind, "target": event.target, "attempt": event.attempt}
        if event.code is not None:
            entry["error_type"] = event.code.error_name
        if event.delay is not None:
            entry["delay"] = event.delay
        for key in ("next_target", "reason", "from_state", "to_state", "mid_stream"):
            if key in event.detail:
                entry[key] = event.detail[key]
        with self._lock:
            self.recent.append(entry)
            self.counts.setdefault(event.target, Counter())[event.kind] += 1

    def _attach(self) -> Callable[[], None]:
        return events.subscribe(self)

    def snapshot(self) -> dict[str, Any]:
        """Every target's live state, the counts, and the recent decisions (newest last)."""
        with self._lock:
            recent = list(self.recent)
            counts = {target: dict(counter) for target, counter in self.counts.items()}
        targets: dict[str, dict[str, Any]] = {}
        for registry in live_registries():
            for name in registry.targets():
                signals = registry.signals(name)
                if signals is None:
                    continue
                row = asdict(signals)
                learned = _learned_source(name) if _learned_source is not None else learned_limits(row)
                row[LEARNED_FIELD] = dict(learned) if learned else None
                row["counts"] = {kind: counts.get(name, {}).get(kind, 0) for kind in _COUNTED}
                targets[name] = row
        return {"time": time.time(), "targets": targets, "recent": recent}


def learned_limits(signals: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the target's limiter learned, from its signals (``None`` when it paces at a configured rate only)."""
    learned: dict[str, Any] = {}
    if signals.get("rate_source") in _LEARNED_SOURCES and signals.get("rate_limit") is not None:
        learned["rps"] = round(float(signals["rate_limit"]), 2)
        learned["from"] = signals["rate_source"]
        if signals.get("spacing_margin"):
            learned["margin"] = f"{float(signals['spacing_margin']):.0%}"
    if signals.get("paused_for"):
        learned["paused"] = f"{float(signals['paused_for']):.1f}s"
    return learned or None


_recorder: WatchRecorder | None = None
_recorder_lock = threading.Lock()


def recorder() -> WatchRecorder:
    """The process-wide recorder, subscribed on first use."""
    global _recorder
    with _recorder_lock:
        if _recorder is None:
            _recorder = WatchRecorder().install()
        return _recorder


def snapshot() -> dict[str, Any]:
    return recorder().snapshot()


class WatchServer:
    """``GET /snapshot`` → this process's snapshot as JSON, on 127.0.0.1, from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        source = recorder()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") not in ("", "/snapshot"):
                    self.send_error(404, "only /snapshot is served")
                    return
                body = json.dumps(source.snapshot(), default=str).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the app's stderr is not ours to write on

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="ailib-resilience-watch", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/snapshot"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WatchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_watch(host: str = "127.0.0.1", port: int = 0) -> WatchServer:
    """Serve this process's live view; then run ``ailib-resilience watch --url <server.url>`` anywhere.

    Example::

        server = start_watch()          # port 0 picks a free one
        print("watch:", server.url)
    """
    return WatchServer(host, port)


def fetch_snapshot(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """Read a snapshot from a ``start_watch`` server (a blocking call: for the CLI, not an event loop)."""
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


# --- drawing --------------------------------------------------------------------------------------------

_CIRCUIT_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def _number(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _learned(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "-"
    return ", ".join(f"{key}={_number(v, '{:g}') if isinstance(v, int | float) else v}" for key, v in value.items())


def render(data: Mapping[str, Any], *, title: str = "ailib-resilience watch") -> Any:
    """A rich renderable of a snapshot: the targets' table, then the most recent decisions."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    targets = Table(title=title, expand=False)
    for column in (
        "target",
        "circuit",
        "in flight",
        "rate left",
        "learned limits",
        "retries",
        "fallbacks",
        "rejected",
        "opened",
    ):
        targets.add_column(column, justify="left" if column in ("target", "circuit", "learned limits") else "right")
    for name, row in sorted(data.get("targets", {}).items()):
        state = str(row.get("circuit_state"))
        circuit = Text(state, style=_CIRCUIT_STYLE.get(state, ""))
        if state == "open" and row.get("cooldown_remaining"):
            circuit.append(f" ({row['cooldown_remaining']:.1f}s)")
        limit = row.get("max_inflight")
        inflight = f"{row.get('current_inflight', 0)}" + (f"/{limit}" if limit else "")
        counts = row.get("counts", {})
        targets.add_row(
            name,
            circuit,
            inflight,
            _number(row.get("rate_remaining")),
            _learned(row.get(LEARNED_FIELD)),
            str(counts.get("retry", 0)),
            str(counts.get("fallback", 0)),
            str(counts.get("rejected", 0)),
            str(row.get("opened_total", 0)),
        )
    recent = Table(title="recent decisions", expand=False, show_edge=False)
    for column in ("time", "what", "target", "detail"):
        recent.add_column(column)
    for entry in list(data.get("recent", []))[-10:]:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.get("time", 0)))
        recent.add_row(stamp, entry.get("kind", ""), entry.get("target", ""), _detail(entry))
    if not data.get("targets"):
        return Group(Text("no target has been called yet", style="dim"), recent)
    return Group(targets, recent)


def _detail(entry: Mapping[str, Any]) -> str:
    kind = entry.get("kind")
    error = entry.get("error_type", "")
    if kind == "retry":
        return f"{error}, waiting {entry.get('delay', 0):.2f}s"
    if kind == "fallback":
        return f"{error} → {entry.get('next_target')}"
    if kind == "state_change":
        return f"{entry.get('from_state', '?')} → {entry.get('to_state')}"
    if kind == "rejected":
        return f"{entry.get('reason', '')} ({error})"
    if kind == "failure" and entry.get("mid_stream"):
        return f"{error}, mid-stream"
    return f"{error} {entry.get('reason', '')}".strip()


def watch(url: str | None = None, *, interval: float = 0.5, once: bool = False, console: Any = None) -> int:
    """Draw the view until Ctrl-C: from ``url`` (another process's ``start_watch``) or this process.

    With ``once``, print one frame and return 0, or 1 if ``url`` cannot be read.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = console or Console()
    title = f"ailib-resilience watch · {url or 'this process'}"

    def frame() -> tuple[Any, bool]:
        try:
            data = fetch_snapshot(url) if url else snapshot()
        except (OSError, ValueError) as exc:
            return Text(f"cannot read {url}: {exc}", style="red"), False
        return render(data, title=title), True

    if once:
        view, ok = frame()
        console.print(view)
        return 0 if ok else 1
    with Live(frame()[0], console=console, refresh_per_second=max(1.0, 1 / interval)) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(frame()[0])
        except KeyboardInterrupt:
            return 0
