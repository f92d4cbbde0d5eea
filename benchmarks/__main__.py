"""Run the benchmarks and write BENCHMARKS.md: ``python -m benchmarks [--quick] [--only NAME ...]``.

Benchmarks: overhead, otel, limiter, goodput, outage, scale, pacing (this package against its peers, one module
each), plus any of ``bench_langchain``, ``bench_litellm`` and ``bench_redis`` that exist (other people's modules:
they run as ``python -m benchmarks.<name>`` and their output is included verbatim; skipped by ``--quick``).

``--quick`` is a smoke run (under a minute: shorter runs, fewer peers) and writes to the temp directory unless
``--output`` says otherwise. ``--only NAME`` replaces just that section of an existing BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import os
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from ._report import DEFAULT_OUTPUT, ROOT, Options, Section, Target, write_markdown

OURS = ("overhead", "otel", "limiter", "goodput", "outage", "scale", "pacing")
EXTERNAL = ("langchain", "litellm", "redis")
EXTERNAL_TIMEOUT = 600.0


def _ours(name: str) -> Callable[[Options], Section]:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    runner: Callable[[Options], Section] = module.run
    return runner


def _external(name: str, quick: bool) -> Section | None:
    """Run ``benchmarks/bench_<name>.py`` (someone else's) in a subprocess and keep its output."""
    module = f"benchmarks.bench_{name}"
    if importlib.util.find_spec(module) is None:
        return None
    if quick:
        print(f"[bench] {name}: skipped by --quick", flush=True)
        return None
    section = Section(f"ext-{name}", f"Other benchmark: bench_{name}", command=f"python -m {module}")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=EXTERNAL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        section.notes.append(f"Did not finish within {EXTERNAL_TIMEOUT:g} s.")
        return section
    section.seconds = time.perf_counter() - started
    output = (proc.stdout or "").strip()
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-15:]
        output += f"\n\n(exit status {proc.returncode})\n" + "\n".join(tail)
    section.method = f"Output of `python -m {module}`, verbatim:\n\n```text\n{output}\n```"
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in under a minute (shorter, fewer peers)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these (repeatable or comma-separated): {', '.join(OURS + EXTERNAL)}",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="goodput seconds per contender (issue: 30)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {DEFAULT_OUTPUT.name}; with --quick, a file in the temp directory, "
        "so a smoke run never replaces the real numbers)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the sections, do not touch the file")
    ns = parser.parse_args(argv)
    wanted = [name.strip() for item in ns.only for name in item.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in OURS + EXTERNAL]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(OURS + EXTERNAL)}")
    selected = wanted or list(OURS + EXTERNAL)
    opts = Options(quick=ns.quick, duration=ns.duration)
    command = "python -m benchmarks" + (" " + shlex.join(argv if argv is not None else sys.argv[1:])).rstrip()
    started = dt.datetime.now().astimezone()
    sections: list[Section] = []
    failed = False
    for name in selected:
        began = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        try:
            if name in OURS:
                section: Section | None = _ours(name)(opts)
            else:
                section = _external(name, ns.quick)
        except Exception:
            failed = True
            trace = traceback.format_exc()
            print(trace, file=sys.stderr)
            section = Section(name, f"{name} (failed)", notes=["The benchmark raised:", f"```\n{trace}\n```"])
            section.targets.append(Target(f"{name} benchmark ran", "missed", "it raised; see the traceback"))
        if section is None:
            continue
        section.command = section.command or command
        section.seconds = section.seconds or time.perf_counter() - began
        sections.append(section)
        print(f"[bench] {name}: {time.perf_counter() - began:.1f} s", flush=True)
        for target in section.targets:
            print(f"    {target.markdown()}", flush=True)
    if ns.no_write:
        for section in sections:
            print(section.markdown())
    else:
        output = ns.output or (Path(tempfile.gettempdir()) / "BENCHMARKS.quick.md" if ns.quick else DEFAULT_OUTPUT)
        write_markdown(output, sections, started, command)
        print(f"[bench] wrote {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
