"""The ``ailib-resilience`` command: run the provider emulator, or the demo.

``ailib-resilience emulator`` serves scripted OpenAI / Anthropic / Gemini endpoints until Ctrl-C, so an app
can be pointed at failing providers without code changes. ``ailib-resilience watch --url URL`` draws a live
view of an app that called ``observability.start_watch()``. ``ailib-resilience demo`` runs the packaged demo
(imported lazily: it needs the ``demo`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ailib-resilience", description="Resilience for LLM calls: a local provider emulator and a demo."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulator = commands.add_parser(
        "emulator",
        help="serve scripted OpenAI / Anthropic / Gemini endpoints",
        description="Serve scripted OpenAI, Anthropic and Gemini endpoints until Ctrl-C.",
        epilog="BEHAVIOUR is one of: ok[:TEXT], latency:SECONDS, 429[:RETRY_AFTER], quota, 500, 502, 503, 504, "
        "529, overloaded, context_length, content_filter, auth, hang[:SECONDS], reset, malformed, "
        "stream_drop[:N], stream_error[:N]. MODEL is the name the provider sees ('gpt-x', or 'openai/gpt-x'); "
        "'*' means every model.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: 0)")
    emulator.add_argument(
        "--script",
        action="append",
        default=[],
        metavar="MODEL=BEHAVIOUR[,BEHAVIOUR...]",
        help="answer MODEL's next requests with these behaviours, in order (repeatable)",
    )
    emulator.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="MODEL=BEHAVIOUR",
        help="how MODEL answers once its script is used up (repeatable)",
    )
    emulator.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="MODEL=RPS[/BURST]",
        help="enforce a token bucket of RPS requests a second on MODEL (repeatable)",
    )
    emulator.add_argument(
        "--fault-rate", type=float, default=0.0, help="fail this fraction of unscripted requests at random"
    )
    emulator.add_argument("--seed", type=int, default=None, help="seed for --fault-rate")
    emulator.add_argument("--quiet", action="store_true", help="do not log each request")
    emulator.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)  # for tests

    watch = commands.add_parser(
        "watch",
        help="a live view of every target's circuit, in-flight, rate and recent decisions",
        description="Draw a live view of an app's resilience state: its circuits, in-flight requests, rate "
        "tokens left, learned limits and recent retries and fallbacks. The app serves it with one call: "
        "langchain_ailib_resilience.observability.start_watch(), which returns the URL to pass here.",
    )
    watch.add_argument("--url", required=True, help="the app's watch URL (http://127.0.0.1:PORT/snapshot)")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between refreshes (default: 0.5)")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")

    commands.add_parser(
        "demo",
        help="run the demo (needs the 'demo' extra)",
        description="Run the demo; any further arguments (--help too) are passed to it.",
        add_help=False,
    )
    return parser


def _split(value: str, option: str) -> tuple[str | None, str]:
    model, sep, rest = value.partition("=")
    if not sep or not model or not rest:
        raise ValueError(f"{option} expects MODEL=VALUE, got {value!r}")
    return (None if model == "*" else model), rest


def _run_emulator(args: argparse.Namespace) -> int:
    from .testing.emulator import ProviderEmulator, parse_behaviour

    emulator = ProviderEmulator(args.host, args.port, verbose=not args.quiet)
    try:
        for value in args.script:
            model, specs = _split(value, "--script")
            if model is None:
                raise ValueError("--script needs a model name, not '*'")
            emulator.script(model, [parse_behaviour(spec) for spec in specs.split(",")])
        for value in args.default:
            model, spec = _split(value, "--default")
            emulator.set_default(model, parse_behaviour(spec))
        for value in args.rate_limit:
            model, limit = _split(value, "--rate-limit")
            rps, _, burst = limit.partition("/")
            emulator.rate_limit(model, float(rps), int(burst or 1))
        if args.fault_rate:
            emulator.set_fault_rate(args.fault_rate, seed=args.seed)
    except ValueError as exc:
        print(f"ailib-resilience emulator: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = (
        signal.signal(signal.SIGTERM, _on_signal) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"ailib-resilience emulator: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"Provider emulator listening on {emulator.base_url}")
        print(f"  OpenAI     api_base={emulator.openai_base}     model=openai/<name>")
        print(f"  Anthropic  api_base={emulator.anthropic_base}  model=anthropic/<name>")
        print(f"  Gemini     api_base={emulator.gemini_base}  model=gemini/<name>")
        print("Any api_key is accepted. Press Ctrl-C to stop.", flush=True)
        stop.wait(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"Stopped after {emulator.count()} request(s).", flush=True)
    return 0


def _run_demo(demo_args: list[str]) -> int:
    try:
        demo = importlib.import_module("langchain_ailib_resilience.demo")
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        if missing == "langchain_ailib_resilience.demo":
            print("ailib-resilience demo: the demo is not available in this version.", file=sys.stderr)
        else:
            print(
                f"ailib-resilience demo: {missing} is not installed; "
                "install the extra: pip install 'langchain-ailib-resilience[demo]'",
                file=sys.stderr,
            )
        return 2
    result = demo.main(demo_args)
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ailib-resilience``; returns the process exit code."""
    parser = _parser()
    # The demo's arguments are whatever the parser does not know, in order (REMAINDER would drop "--options").
    args, extra = parser.parse_known_args(argv)
    if args.command == "emulator":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return _run_emulator(args)
    if args.command == "watch":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return _run_watch(args)
    return _run_demo(extra)


def _run_watch(args: argparse.Namespace) -> int:
    try:
        from .observability._watch import watch
    except ModuleNotFoundError as exc:  # pragma: no cover - rich comes with the demo extra
        print(f"ailib-resilience watch: {exc.name} is not installed: pip install 'langchain-ailib-resilience[demo]'")
        return 2
    if args.interval <= 0:
        print("ailib-resilience watch: --interval must be above 0", file=sys.stderr)
        return 2
    return watch(args.url, interval=args.interval, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
