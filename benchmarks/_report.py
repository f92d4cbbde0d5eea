"""Shared pieces of the benchmarks: options, statistics, result sections and the BENCHMARKS.md writer.

Every benchmark module exposes ``run(opts: Options) -> Section``. A ``Section`` holds its tables (rows of
strings, ratios first), the targets it checks (met, missed or pending, with the measured number) and notes.
``write_markdown`` renders the sections into BENCHMARKS.md between ``<!-- bench:NAME -->`` markers, so running
one benchmark (``--only NAME``) replaces its own section and keeps the others.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import math
import os
import platform
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "BENCHMARKS.md"

PACKAGES = (
    "langchain-ailib-resilience",
    "tenacity",
    "stamina",
    "aiolimiter",
    "pyrate-limiter",
    "purgatory",
    "aiobreaker",
    "langchain-core",
    "langchain-litellm",
    "litellm",
    "httpx",
    "aiohttp",
)


@dataclass(frozen=True)
class Options:
    """Command-line choices every benchmark reads."""

    quick: bool = False
    duration: float = 10.0  # goodput run length, seconds
    verbose: bool = False


Status = Literal["met", "missed", "pending", "info"]


@dataclass
class Target:
    """One target line: what was asked, what we measured, and whether it holds."""

    text: str
    status: Status
    measured: str

    @classmethod
    def check(cls, text: str, ok: bool, measured: str) -> Target:
        return cls(text, "met" if ok else "missed", measured)

    def markdown(self) -> str:
        mark = {"met": "**met**", "missed": "**MISSED**", "pending": "*pending*", "info": "info"}[self.status]
        return f"- {mark}: {self.text} — measured {self.measured}"


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        lines = []
        if self.caption:
            lines += [self.caption, ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    name: str
    title: str
    method: str = ""
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quick: bool = False
    command: str = ""
    seconds: float = 0.0

    def markdown(self) -> str:
        title = self.title + (" (quick run)" if self.quick else "")
        parts = [f"## {title}", ""]
        if self.command:
            parts += [f"Command: `{self.command}` ({self.seconds:.0f} s)", ""]
        if self.method:
            parts += [self.method, ""]
        if self.targets:
            parts += ["Targets:", "", *(target.markdown() for target in self.targets), ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        if self.notes:
            parts += ["Notes:", "", *(f"- {note}" for note in self.notes), ""]
        return "\n".join(parts).rstrip() + "\n"


# --- statistics ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def worst_window(times: Iterable[float], window: float) -> int:
    """Most events inside any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def ratio(value: float, base: float, digits: int = 2) -> str:
    if base == 0 or math.isnan(base) or math.isnan(value):
        return "–"
    return f"{value / base:.{digits}f}×"


# --- machine and versions -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def versions() -> list[tuple[str, str]]:
    out = []
    for name in PACKAGES:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def header(started: _dt.datetime, command: str) -> str:
    impl = platform.python_implementation()
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks` (`make bench`); do not edit by hand. Each benchmark runs this package and",
        "its peers in the same process, interleaved and repeated; ratios are the headline, absolute numbers secondary.",
        "Sections carry the command and date of their own last run.",
        "",
        f"- Last written: {started.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} by `{command}`",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        f"- Load average when it started (1/5/15 min): {load_average()}",
        f"- Python: {impl} {sys.version.split()[0]}",
        "- Packages: " + ", ".join(f"{name} {version}" for name, version in versions()),
        "",
    ]
    return "\n".join(lines)


_MARK = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n", re.DOTALL)


def write_markdown(path: Path, sections: Sequence[Section], started: _dt.datetime, command: str) -> None:
    """Write ``sections`` into ``path``, keeping sections of earlier runs that this run did not redo."""
    existing: dict[str, str] = {}
    order: list[str] = []
    if path.exists():
        for match in _MARK.finditer(path.read_text()):
            existing[match.group("name")] = match.group("body")
            order.append(match.group("name"))
    stamp = started.strftime("%Y-%m-%d %H:%M")
    for section in sections:
        body = section.markdown()
        body = body.replace("\n", f"\n\n*Run {stamp}.*\n", 1) if body.startswith("## ") else body
        existing[section.name] = body
        if section.name not in order:
            order.append(section.name)
    preferred = ["overhead", "otel", "limiter", "goodput", "outage", "scale", "pacing"]
    seen = list(order)
    order.sort(key=lambda name: (preferred.index(name) if name in preferred else len(preferred), seen.index(name)))
    parts = [header(started, command), _summary(existing, order)]
    for name in order:
        parts.append(f"<!-- bench:{name} -->\n{existing[name].rstrip()}\n<!-- /bench:{name} -->\n")
    path.write_text("\n".join(parts))


def _summary(bodies: dict[str, str], order: Sequence[str]) -> str:
    """Every target line of every section, gathered at the top."""
    lines = ["## Targets at a glance", ""]
    for name in order:
        body = bodies[name]
        title = body.splitlines()[0].removeprefix("## ") if body.startswith("## ") else name
        for line in body.splitlines():
            if line.startswith(("- **met**", "- **MISSED**", "- *pending*")):
                lines.append(f"{line} ({title})")
    if len(lines) == 2:
        lines.append("- (no targets recorded)")
    return "\n".join(lines) + "\n"


def run_from_command_line(run: Callable[[Options], Section], doc: str | None) -> None:
    """``python -m benchmarks.bench_x [--quick]``: run one benchmark and print its table."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    print(run(Options(quick=ns.quick, verbose=True)).markdown())
