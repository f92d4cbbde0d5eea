"""``make demo`` / ``ailib-resilience demo``: an LCEL chain riding out a 429 storm and an outage.

The built-in provider emulator plays three providers (OpenAI, Anthropic and Gemini wire formats on 127.0.0.1).
The chain ``prompt | ResilientChatModel | parser`` runs through four acts while the primary degrades and the
fallbacks stay healthy:

1. healthy: the primary answers everything;
2. 429 storm: every request's first attempt gets a 429 with Retry-After; the retry waits exactly that long;
3. outage: the primary answers 503; retries give up, the breaker opens after ``failure_threshold`` failures and
   from then on no request reaches the primary: the fallback answers at once;
4. recovery: after the cooldown one half-open probe reaches the primary, succeeds, and the circuit closes.

Each act checks what it claims (from the emulator's request log and the executor's events) and the demo exits
non-zero if any claim fails. ``--real`` runs the same chain against real providers instead (keys from the usual
environment variables), without scripted faults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from .config import BackpressureConfig, CircuitBreakerConfig, RateLimiterConfig, ResilientConfig, RetryConfig
from .errors.exceptions import CircuitOpenError
from .events import ResilienceEvent, subscribe
from .registry import reset_registry
from .testing.emulator import Fault, ProviderEmulator, ProviderFormat, Success

PRIMARY = "openai/gpt-4o-mini"
FALLBACK = "anthropic/claude-3-5-haiku"
SECOND_FALLBACK = "gemini/gemini-2.0-flash"
COOLDOWN = 2.0
THRESHOLD = 3
STORM_RETRY_AFTER = 0.4


def demo_config() -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=2, initial_delay=0.1, max_delay=0.5, max_retry_after=2.0),
        rate_limiter=RateLimiterConfig(requests_per_second=50, burst_size=10),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=THRESHOLD, cooldown_seconds=COOLDOWN),
        backpressure=BackpressureConfig(max_inflight=8),
        total_timeout=20.0,
    )


@dataclass
class Act:
    title: str
    requests: int
    checks: list[tuple[str, bool]] = field(default_factory=list)
    answered_by: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class Narrator:
    """Prints every resilience decision as it happens (rich when installed, plain text otherwise)."""

    def __init__(self, plain: bool) -> None:
        self.events: list[ResilienceEvent] = []
        self.console: Any = None
        self.progress: Any = None
        if not plain:
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self.console = Console(highlight=False)
                self.progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
            except ImportError:
                self.console = None

    def say(self, text: str, style: str = "") -> None:
        if self.console is not None:
            self.console.print(text, style=style or None)
        else:
            print(text)

    def on_event(self, event: ResilienceEvent) -> None:
        self.events.append(event)
        code = f"{event.code.value} {event.code.error_name}" if event.code else ""
        if event.kind == "retry":
            self.say(
                f"   ↻ retry {event.target} after attempt {event.attempt} ({code}): waiting {event.delay:.2f}s",
                "yellow",
            )
        elif event.kind == "fallback":
            self.say(f"   ⇢ fallback {event.target} → {event.detail.get('next_target')} ({code})", "magenta")
        elif event.kind == "rejected":
            why = code
            if isinstance(event.error, CircuitOpenError):
                left = f", {event.error.retry_after:.1f}s of cooldown left" if event.error.retry_after else ""
                why = f"circuit open{left}"
            self.say(f"   ⊘ {event.target} rejected before sending ({why})", "red")
        elif event.kind == "state_change":
            self.say(f"   ⚡ circuit {event.target} is now {event.detail.get('to_state')}", "bold red")
        elif event.kind == "give_up":
            reason = event.detail.get("reason")
            self.say(f"   ✗ {event.target} gives up after attempt {event.attempt} ({code}; {reason})", "red")

    def of(self, kind: str, since: int = 0) -> list[ResilienceEvent]:
        return [e for e in self.events[since:] if e.kind == kind]


def build_chain(model: Runnable[Any, Any]) -> Runnable[dict[str, str], str]:
    prompt = ChatPromptTemplate.from_messages([("system", "Answer in one short sentence."), ("human", "{question}")])
    return prompt | model | StrOutputParser()


def _answered_by(answer: str) -> str:
    return answer.split("]", 1)[0].lstrip("[") if answer.startswith("[") else "?"


async def _run_act(
    act: Act, chain: Runnable[dict[str, str], str], narrator: Narrator, concurrency: int, progress: Callable[[], None]
) -> list[BaseException]:
    failures: list[BaseException] = []
    started = time.monotonic()
    for first in range(0, act.requests, concurrency):
        batch = [{"question": f"question {first + i + 1} of act '{act.title}'"} for i in range(concurrency)]
        batch = batch[: act.requests - first]
        answers = await chain.abatch(batch, return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                failures.append(answer)
                narrator.say(f"   ✗ request failed: {answer}", "bold red")
            else:
                act.answered_by[_answered_by(answer)] += 1
            progress()
    act.seconds = time.monotonic() - started
    return failures


async def arun_scenario(narrator: Narrator, emulator: ProviderEmulator) -> tuple[list[Act], Any]:
    import litellm

    from .integrations.langchain import ResilientChatModel

    litellm.suppress_debug_info = True  # its "Provider List" banner on every handled error drowns the story

    def target(model_id: str, provider: ProviderFormat) -> dict[str, Any]:
        return {"model": model_id, "target": model_id, "api_base": emulator.api_base(provider), "api_key": "demo-key"}

    for model_id in (PRIMARY, FALLBACK, SECOND_FALLBACK):
        emulator.set_default(model_id, Success(f"[{model_id}] Resilience is the art of failing well."))

    model = ResilientChatModel(
        demo_config(),
        model=target(PRIMARY, "openai"),
        fallbacks=[target(FALLBACK, "anthropic"), target(SECOND_FALLBACK, "gemini")],
    )
    chain = build_chain(model)
    acts = [Act("healthy", 8), Act("429 storm", 6), Act("outage", 10), Act("recovery", 8)]
    total = sum(a.requests for a in acts)
    done = 0
    bar = narrator.progress.add_task("requests", total=total) if narrator.progress is not None else None

    def tick() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            narrator.progress.advance(bar)

    primary_name = PRIMARY.split("/", 1)[1]

    # Act 1: healthy.
    narrator.say("\n[1/4] healthy: the primary answers everything", "bold cyan")
    mark, sent = len(narrator.events), emulator.count(primary_name)
    failures = await _run_act(acts[0], chain, narrator, 4, tick)
    acts[0].checks += [
        ("every request answered", not failures),
        ("all answered by the primary", acts[0].answered_by[PRIMARY] == acts[0].requests),
        ("no retries", not narrator.of("retry", mark)),
    ]

    # Act 2: a 429 storm: every first attempt is refused with Retry-After; the retry succeeds.
    narrator.say(
        f"\n[2/4] 429 storm: every request's first attempt gets 429, Retry-After {STORM_RETRY_AFTER}s", "bold cyan"
    )
    mark, sent = len(narrator.events), emulator.count(primary_name)
    emulator.script(PRIMARY, [Fault.rate_limit(retry_after=STORM_RETRY_AFTER), Success(f"[{PRIMARY}] Retried.")] * 6)
    failures = await _run_act(acts[1], chain, narrator, 1, tick)
    retries = narrator.of("retry", mark)
    acts[1].checks += [
        ("every request answered", not failures),
        ("one retry per 429", len(retries) == acts[1].requests),
        ("each retry waited the provider's Retry-After", all((e.delay or 0) >= STORM_RETRY_AFTER for e in retries)),
        ("all answered by the primary", acts[1].answered_by[PRIMARY] == acts[1].requests),
        ("primary saw 2 requests per call", emulator.count(primary_name) - sent == 2 * acts[1].requests),
    ]

    # Act 3: outage. The primary answers 503 until further notice.
    narrator.say("\n[3/4] outage: the primary answers 503 Service Unavailable", "bold cyan")
    mark, sent = len(narrator.events), emulator.count(primary_name)
    emulator.set_default(PRIMARY, Fault.server_error(503))
    failures = await _run_act(acts[2], chain, narrator, 1, tick)
    reached = emulator.count(primary_name) - sent
    acts[2].checks += [
        ("every request answered", not failures),
        ("the breaker opened", any(e.detail.get("to_state") == "open" for e in narrator.of("state_change", mark))),
        (f"the primary saw only the {THRESHOLD} failures that opened it", reached == THRESHOLD),
        ("the rest went straight to the fallback", len(narrator.of("rejected", mark)) == acts[2].requests - 1),
        ("all answered by the first fallback", acts[2].answered_by[FALLBACK] == acts[2].requests),
    ]
    open_snapshot = model.signals_snapshot()

    # Act 4: recovery. After the cooldown a single probe closes the circuit.
    narrator.say(
        f"\n[4/4] recovery: the primary is healthy again; waiting out the {COOLDOWN:.0f}s cooldown", "bold cyan"
    )
    emulator.set_default(PRIMARY, Success(f"[{PRIMARY}] Back online."))
    # From before the wait: the circuit reads half-open as soon as its cooldown is over, which anyone reading
    # its state (the live view) may notice first.
    cooled = len(narrator.events)
    await asyncio.sleep(COOLDOWN + 0.1)
    mark, sent = len(narrator.events), emulator.count(primary_name)
    failures = await _run_act(acts[3], chain, narrator, 1, tick)
    states = [e.detail.get("to_state") for e in narrator.of("state_change", cooled)]
    acts[3].checks += [
        ("every request answered", not failures),
        ("half-open, then closed by one probe", states[:2] == ["half_open", "closed"]),
        ("all answered by the primary again", acts[3].answered_by[PRIMARY] == acts[3].requests),
        ("every request reached the primary", emulator.count(primary_name) - sent == acts[3].requests),
    ]
    assert done == total
    return acts, (model, open_snapshot)


def _report(narrator: Narrator, acts: Sequence[Act], model: Any, open_snapshot: Any) -> bool:
    ok = all(passed for act in acts for _, passed in act.checks)
    final = model.signals_snapshot()
    if narrator.console is not None:
        from rich.table import Table

        outcomes = Table(title="Outcomes", show_lines=False)
        for column in ("act", "requests", "answered by", "seconds", "checks"):
            outcomes.add_column(column)
        for act in acts:
            by = ", ".join(f"{k.split('/')[-1]} x{v}" for k, v in act.answered_by.items())
            checks = "\n".join(("✓ " if passed else "✗ ") + name for name, passed in act.checks)
            outcomes.add_row(act.title, str(act.requests), by, f"{act.seconds:.2f}", checks)
        narrator.console.print(outcomes)
        signals = Table(title="Signals per target (during the outage → at the end)")
        for column in ("target", "circuit", "in flight", "rate tokens left", "opened", "rejected"):
            signals.add_column(column)
        for name, now in final.targets.items():
            then = open_snapshot.targets.get(name)
            circuit = f"{then.circuit_state} → {now.circuit_state}" if then else now.circuit_state
            tokens = "-" if now.rate_remaining is None else f"{now.rate_remaining:.1f}"
            signals.add_row(
                name, circuit, str(now.current_inflight), tokens, str(now.opened_total), str(now.rejected_total)
            )
        narrator.console.print(signals)
    else:
        for act in acts:
            print(f"{act.title}: {dict(act.answered_by)} in {act.seconds:.2f}s")
            for name, passed in act.checks:
                print(f"  {'PASS' if passed else 'FAIL'} {name}")
        for name, now in final.targets.items():
            print(f"{name}: circuit={now.circuit_state} inflight={now.current_inflight} opened={now.opened_total}")
    narrator.say(
        "\nscenario behaved as described" if ok else "\nSCENARIO DID NOT BEHAVE AS DESCRIBED",
        "bold green" if ok else "bold red",
    )
    return ok


async def _run_real(narrator: Narrator, models: Sequence[str]) -> int:
    from .integrations.langchain import ResilientChatModel

    model = ResilientChatModel(ResilientConfig.interactive(), model=models[0], fallbacks=list(models[1:]))
    answer = await build_chain(model).ainvoke({"question": "What does a circuit breaker do, in one sentence?"})
    narrator.say(answer)
    snapshot = model.signals_snapshot()
    narrator.say(f"circuit={snapshot.circuit_state} inflight={snapshot.current_inflight}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ailib-resilience demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", action="store_true", help="plain text output (no colours or tables)")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="draw the live view (circuits, in-flight, rate, recent decisions) while the scenario runs, and serve "
        "it for 'ailib-resilience watch --url ...' from another terminal",
    )
    parser.add_argument(
        "--real",
        nargs="+",
        metavar="MODEL",
        help="run against real providers instead (LiteLLM ids; keys from the environment), e.g. "
        "--real openai/gpt-4o-mini anthropic/claude-3-5-haiku-20241022",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    narrator = Narrator(plain=args.plain)
    # The narrator hears every decision of the process (circuit changes from the breakers themselves), and tells
    # the story in place of the library's own log lines.
    unsubscribe = subscribe(narrator.on_event)
    library_logger = logging.getLogger("langchain_ailib_resilience")
    level = library_logger.level
    library_logger.setLevel(logging.ERROR)
    try:
        return _main(args, narrator)
    finally:
        library_logger.setLevel(level)
        unsubscribe()


def _main(args: argparse.Namespace, narrator: Narrator) -> int:
    if args.real:
        return asyncio.run(_run_real(narrator, args.real))

    narrator.say(
        "langchain-ailib-resilience demo: prompt | ResilientChatModel | parser on the provider emulator", "bold"
    )
    narrator.say(f"primary {PRIMARY}, fallbacks {FALLBACK}, {SECOND_FALLBACK}; no API keys, nothing leaves 127.0.0.1")
    reset_registry()
    display: Any = narrator.progress
    server: Any = None
    if narrator.console is not None:
        from .observability._watch import recorder, render, snapshot, start_watch

        recorder()  # from now on, every decision is kept for the view
        if args.watch:
            from rich.live import Live

            server = start_watch()
            narrator.say(f"live view served at {server.url} (another terminal: ailib-resilience watch --url URL)")
            narrator.progress = None  # one live display at a time: the view replaces the progress bar
            display = Live(
                get_renderable=lambda: render(snapshot(), title="live view"),
                console=narrator.console,
                refresh_per_second=8,
            )
    started = time.monotonic()
    try:
        with ProviderEmulator() as emulator, display or contextlib.nullcontext():
            acts, (model, open_snapshot) = asyncio.run(arun_scenario(narrator, emulator))
    finally:
        if server is not None:
            server.close()
    ok = _report(narrator, acts, model, open_snapshot)
    if narrator.console is not None and not args.watch:
        narrator.console.print(render(snapshot(), title="the view 'ailib-resilience watch' draws, at the end"))
    narrator.say(f"finished in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
