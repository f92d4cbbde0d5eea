"""The fault matrix: every emulated provider fault × every way into the library, over real HTTP.

Each case scripts one fault as the primary model's next answer on a fresh ``ProviderEmulator`` (the fallback
model answers normally), makes one call through one entry point, and checks:

- the outcome, derived from the fault's ``StandardErrorCode`` and its flags (the ``CODE`` table): a retryable
  code is retried on the same target and answered by the primary (2 requests there); a non-retryable but
  fallbackable one (quota, auth) goes to the fallback after 1 request; any other (context length, content
  filter) fails with its code and the fallback sees nothing. A stream that breaks after its first chunk
  surfaces the error normalised, with no retry and no fallback (``MID_STREAM``);
- how many requests reached the emulator, per model;
- the events the executor emitted (which code was retried or given up on; Retry-After honoured);
- that no permit is held afterwards (``current_inflight == 0`` for every target, no callback ticket held);
- that nothing is left unresolved: the emulator answers nothing any more, and no asyncio task is pending.

Entry points: ``ResilientChatModel`` invoke, ainvoke, stream, astream and batch (two inputs); LiteLLM through
``resilient_completion`` (sync, async, sync stream, async stream); and ``litellm.acompletion`` (plain and
streaming) gated by a registered ``ResilienceCallback``, which does not retry: there each fault surfaces as
LiteLLM's own exception after 1 request, and the breaker counts it when its code indicts the provider. The
OpenAI format runs every combination; Anthropic and Gemini run a representative set of entry points.

A few answers are LiteLLM's, not ours, and are pinned as such in ``QUIRKS`` (see there).
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import litellm
import pytest
from matrix_helpers import (
    Outcome,
    acall,
    adrain,
    agen,
    call,
    drain,
    eventually,
    text_of_delta,
    text_of_message,
    text_of_response,
)

from langchain_ailib_resilience import (
    ResilienceError,
    ResilienceEvent,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
    StandardErrorCode,
)
from langchain_ailib_resilience.errors.classify import classify_error
from langchain_ailib_resilience.integrations.litellm import (
    ResilienceCallback,
    held_calls,
    resilient_acompletion,
    resilient_completion,
    target_key,
)
from langchain_ailib_resilience.registry import DEFAULT_REGISTRY
from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success

C = StandardErrorCode
pytestmark = pytest.mark.usefixtures("warm_litellm")

PRIMARY, FALLBACK = "primary", "backup"
PRIMARY_TEXT, FALLBACK_TEXT = "Answer from the primary.", "Answer from the fallback."
MESSAGES = [{"role": "user", "content": "hi"}]
PROMPT = "hi"
RETRY_AFTER = 0.05  # what the scripted 429 asks for; honoured (max_retry_after is 2 s)
ATTEMPT_TIMEOUT = 0.5  # only for hang cases: the retry after a hang must still have time to succeed
HANG = 1.0  # the emulator holds a hung request this long (or until stopped), then closes it without an answer

FAULTS: dict[str, Fault] = {
    "429": Fault.rate_limit(RETRY_AFTER),
    "500": Fault.server_error(500),
    "502": Fault.server_error(502),
    "503": Fault.server_error(503),
    "529": Fault.server_error(529),
    "overloaded": Fault.overloaded(),  # Anthropic: 529 overloaded_error; OpenAI and Gemini: 503
    "quota": Fault.quota(),
    "context_length": Fault.context_length(),
    "content_filter": Fault.content_filter(),
    "auth": Fault.auth(),
    "hang": Fault.hang(HANG),
    "reset": Fault.reset(),
    "malformed": Fault.malformed(),
    "stream_drop": Fault.stream_drop(2),
    "stream_error": Fault.stream_error(2),  # the provider's overload event after two chunks
}

# What each fault is on a plain request (a stream fault on a plain request: half a body, or the error itself).
CODE: dict[str, StandardErrorCode] = {
    "429": C.RATE_LIMITED,
    "500": C.SERVER_ERROR,
    "502": C.SERVER_ERROR,
    "503": C.OVERLOADED,
    "529": C.OVERLOADED,
    "overloaded": C.OVERLOADED,
    "quota": C.QUOTA_EXHAUSTED,
    "context_length": C.REQUEST_TOO_LARGE,
    "content_filter": C.INVALID_REQUEST,
    "auth": C.AUTHENTICATION,
    "hang": C.TIMEOUT,
    "reset": C.SERVER_ERROR,
    "malformed": C.SERVER_ERROR,
    "stream_drop": C.SERVER_ERROR,
    "stream_error": C.OVERLOADED,
}

# Faults that break a stream after its first chunk: (code, text received before the break).
MID_STREAM: dict[str, tuple[StandardErrorCode, str]] = {
    "stream_drop": (C.SERVER_ERROR, "Hello from "),
    "stream_error": (C.OVERLOADED, "Hello from "),
}

Kind = Literal["retried", "fell_back", "failed", "mid_stream", "raised", "empty"]


@dataclass(frozen=True)
class Expected:
    """``kind``: retried (answered by the primary after one retry), fell_back (answered by the fallback),
    failed (a ``ResilienceError`` before any chunk), mid_stream (the error after ``partial``), raised (the
    callback modes: LiteLLM's exception, classified as ``code``), empty (answered with no text)."""

    kind: Kind
    code: StandardErrorCode | None
    primary: int
    fallback: int = 0
    partial: str = ""


# LiteLLM 1.110 behaviours, pinned so that a change shows up here (see tests/emulator/test_emulator_litellm.py):
# - Gemini's content filter is a 200 with finish_reason "content_filter" and no text: LiteLLM raises nothing, so
#   there is nothing to classify and the call "succeeds" with an empty answer.
# - A malformed Gemini stream ends silently with no chunk: an empty answer again.
# - A malformed OpenAI stream breaks after the role-only first chunk, so it is a mid-stream failure (no retry)
#   with no text; Anthropic's fails before its first chunk and is retried like any 5xx.
QUIRKS: dict[tuple[str, str, bool], Expected] = {
    ("gemini", "content_filter", False): Expected("empty", None, primary=1),
    ("gemini", "content_filter", True): Expected("empty", None, primary=1),
    ("gemini", "malformed", True): Expected("empty", None, primary=1),
    ("openai", "malformed", True): Expected("mid_stream", C.SERVER_ERROR, primary=1, partial=""),
}

LC_MODES = ("lc_invoke", "lc_ainvoke", "lc_stream", "lc_astream", "lc_batch")
RC_MODES = ("rc_sync", "rc_async", "rc_stream", "rc_astream")
CB_MODES = ("cb_async", "cb_astream")
STREAMING = frozenset({"lc_stream", "lc_astream", "rc_stream", "rc_astream", "cb_astream"})
SYNC_LANGCHAIN = frozenset({"lc_invoke", "lc_stream", "lc_batch"})
BATCH_SIZE = 2  # lc_batch sends two inputs: one meets the fault, the other is answered by the primary

MODES_BY_PROVIDER: dict[str, tuple[str, ...]] = {
    "openai": (*LC_MODES, *RC_MODES, *CB_MODES),
    "anthropic": ("lc_ainvoke", "lc_astream", "rc_sync", "rc_astream", "cb_async"),
    "gemini": ("lc_ainvoke", "lc_astream", "rc_sync", "rc_astream", "cb_async"),
}


def expected(provider: str, fault: str, mode: str) -> Expected:
    streaming = mode in STREAMING
    quirk = QUIRKS.get((provider, fault, streaming))
    if quirk is not None:
        return quirk
    if streaming and fault in MID_STREAM:
        code, partial = MID_STREAM[fault]
        return Expected("mid_stream", code, primary=1, partial=partial)
    code = CODE[fault]
    if mode in CB_MODES:
        return Expected("raised", code, primary=1)
    if code.retryable:
        return Expected("retried", code, primary=2)
    if code.fallbackable:
        return Expected("fell_back", code, primary=1, fallback=1)
    return Expected("failed", code, primary=1)


def _cases() -> list[Any]:
    cases = []
    for provider, modes in MODES_BY_PROVIDER.items():
        for mode in modes:
            for fault in FAULTS:
                cases.append(pytest.param(provider, mode, fault, id=f"{provider}-{mode}-{fault}"))
    return cases


# --- running one case ---------------------------------------------------------------------------------------


@dataclass
class Harness:
    emulator: ProviderEmulator
    provider: str
    fault: str
    events: list[ResilienceEvent] = field(default_factory=list)
    callback: ResilienceCallback | None = None
    model: ResilientChatModel | None = None

    @property
    def config(self) -> ResilientConfig:
        return ResilientConfig(
            retry=RetryConfig(max_retries=2, initial_delay=0.01, max_delay=0.05, max_retry_after=2.0),
            attempt_timeout=ATTEMPT_TIMEOUT if self.fault == "hang" else None,
            total_timeout=30.0,  # a safety net: no case may hang the suite
        )

    def api_base(self) -> str:
        return self.emulator.api_base(self.provider)  # type: ignore[arg-type]

    # LangChain -------------------------------------------------------------------------------------------

    def chat_model(self) -> ResilientChatModel:
        def spec(name: str) -> dict[str, Any]:
            model_id = f"{self.provider}/{name}"
            return {"model": model_id, "target": model_id, "api_base": self.api_base(), "api_key": "test-key"}

        self.model = ResilientChatModel(self.config, model=spec(PRIMARY), fallbacks=[spec(FALLBACK)])
        self.model.executor.add_listener(self.events.append)
        return self.model

    # LiteLLM ---------------------------------------------------------------------------------------------

    def completion_kwargs(self) -> dict[str, Any]:
        fallback = {"model": f"{self.provider}/{FALLBACK}", "api_base": self.api_base(), "api_key": "test-key"}
        return {
            "model": f"{self.provider}/{PRIMARY}",
            "messages": MESSAGES,
            "api_base": self.api_base(),
            "api_key": "test-key",
            "config": self.config,
            "fallbacks": [fallback],
            "listeners": [self.events.append],
        }

    def callback_kwargs(self) -> dict[str, Any]:
        self.callback = ResilienceCallback(self.config).register()
        kwargs = self.emulator.litellm_kwargs(self.provider, PRIMARY)  # type: ignore[arg-type]
        if self.fault == "hang":
            kwargs["timeout"] = ATTEMPT_TIMEOUT  # the callback has no attempt timeout of its own
        return {"messages": MESSAGES, **kwargs}

    async def run(self, mode: str) -> list[Outcome]:
        if mode == "lc_invoke":
            model = self.chat_model()
            return [await asyncio.to_thread(call, lambda: text_of_message(model.invoke(PROMPT)))]
        if mode == "lc_ainvoke":
            model = self.chat_model()
            return [await acall(lambda: model.ainvoke(PROMPT), text_of_message)]
        if mode == "lc_stream":
            model = self.chat_model()
            return [await asyncio.to_thread(drain, lambda: model.stream(PROMPT), text_of_message)]
        if mode == "lc_astream":
            model = self.chat_model()
            return [await adrain(lambda: agen(model.astream(PROMPT)), text_of_message)]
        if mode == "lc_batch":
            model = self.chat_model()
            results = await asyncio.to_thread(model.batch, [PROMPT] * BATCH_SIZE, return_exceptions=True)
            return [Outcome(error=r) if isinstance(r, BaseException) else Outcome(text_of_message(r)) for r in results]
        if mode == "rc_sync":
            kwargs = self.completion_kwargs()
            return [await asyncio.to_thread(call, lambda: text_of_response(resilient_completion(**kwargs)))]
        if mode == "rc_async":
            kwargs = self.completion_kwargs()
            return [await acall(lambda: resilient_acompletion(**kwargs), text_of_response)]
        if mode == "rc_stream":
            kwargs = self.completion_kwargs()
            return [await asyncio.to_thread(drain, lambda: resilient_completion(stream=True, **kwargs), text_of_delta)]
        if mode == "rc_astream":
            kwargs = self.completion_kwargs()
            return [await adrain(lambda: resilient_acompletion(stream=True, **kwargs), text_of_delta)]
        if mode == "cb_async":
            kwargs = self.callback_kwargs()
            return [await acall(lambda: litellm.acompletion(**kwargs), text_of_response)]
        if mode == "cb_astream":
            kwargs = self.callback_kwargs()
            return [await adrain(lambda: litellm.acompletion(stream=True, **kwargs), text_of_delta)]
        raise AssertionError(f"unknown mode {mode}")

    def inflight(self) -> dict[str, int]:
        """Permits held per target, from the signals of whichever entry point ran."""
        if self.model is not None:
            return {name: t.current_inflight for name, t in self.model.signals_snapshot().targets.items()}
        if self.callback is not None:
            snapshot = self.callback.signals_snapshot(model=f"{self.provider}/{PRIMARY}")
            return {name: t.current_inflight for name, t in snapshot.targets.items()}
        held = {}
        for name in (PRIMARY, FALLBACK):
            target = target_key(f"{self.provider}/{name}", api_base=self.api_base())
            state = DEFAULT_REGISTRY.peek(target)
            held[target] = state.signals().current_inflight if state is not None else 0
        return held


def _code_of(error: BaseException, mode: str) -> StandardErrorCode:
    if mode in CB_MODES:
        assert not isinstance(error, ResilienceError), "the callback passes the provider's failures through as is"
        return classify_error(error).code
    assert isinstance(error, ResilienceError), f"not normalised: {type(error).__name__}: {error}"
    return error.code


def _is_litellm_housekeeping(task: asyncio.Task[Any]) -> bool:
    """LiteLLM's long-lived logging worker, which lives as long as the loop: not a call of ours."""
    return "LoggingWorker" in getattr(task.get_coro(), "__qualname__", "")


async def _assert_no_pending_tasks() -> None:
    """LiteLLM logs each call in fire-and-forget tasks: let them finish, then nothing may be left."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done() and not _is_litellm_housekeeping(t)]
    if pending:
        await asyncio.wait(pending, timeout=3.0)
    left = [t for t in pending if not t.done()]
    assert not left, f"tasks left pending: {left}"


# --- the matrix ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "mode", "fault"), _cases())
async def test_fault_matrix(provider_emulator: ProviderEmulator, provider: str, mode: str, fault: str) -> None:
    emulator = provider_emulator
    emulator.script(PRIMARY, FAULTS[fault])
    emulator.set_default(PRIMARY, Success(PRIMARY_TEXT))
    emulator.set_default(FALLBACK, Success(FALLBACK_TEXT))
    want = expected(provider, fault, mode)
    harness = Harness(emulator, provider, fault)

    if fault == "hang":
        # The only timing-sensitive case: the retry after the hang must finish within the attempt timeout. With
        # LiteLLM loaded, a full garbage collection can pause the process for up to ~0.7 s: none in that window.
        gc.disable()
    started = time.monotonic()
    try:
        outcomes = await harness.run(mode)
    finally:
        gc.enable()
    elapsed = time.monotonic() - started

    # The outcome of the input that met the fault; in a batch the other input is answered by the primary.
    extra = len(outcomes) - 1
    if extra:
        answered = [o for o in outcomes if o.error is None and o.text == PRIMARY_TEXT]
        assert len(answered) >= extra, outcomes
        for other in answered[:extra]:
            outcomes.remove(other)
    (outcome,) = outcomes
    if want.kind == "retried":
        assert outcome.error is None, f"expected an answer after one retry, got {outcome.error!r}"
        assert outcome.text == PRIMARY_TEXT
    elif want.kind == "fell_back":
        assert outcome.error is None, f"expected the fallback's answer, got {outcome.error!r}"
        assert outcome.text == FALLBACK_TEXT
    elif want.kind == "empty":
        assert outcome.error is None, f"expected an empty answer, got {outcome.error!r}"
        assert outcome.text == ""
    else:
        assert outcome.error is not None, f"expected a failure with {want.code}, got the answer {outcome.text!r}"
        assert _code_of(outcome.error, mode) is want.code, repr(outcome.error)
        assert outcome.text == want.partial

    # Requests per model: the primary's retries and the fallback's share, nothing hidden (no SDK retries).
    assert (emulator.count(PRIMARY), emulator.count(FALLBACK)) == (want.primary + extra, want.fallback)

    # The executor's account of it.
    retries = [e for e in harness.events if e.kind == "retry"]
    fallbacks = [e for e in harness.events if e.kind == "fallback"]
    give_ups = [e for e in harness.events if e.kind == "give_up"]
    if want.kind == "retried":
        assert [e.code for e in retries] == [want.code]
        assert not fallbacks
        if fault == "429":
            assert retries[0].delay is not None and retries[0].delay >= RETRY_AFTER  # Retry-After honoured
        if fault == "hang":
            assert elapsed < HANG, "the attempt timeout, not the hang's end, should have cut the first attempt"
    elif want.kind == "fell_back":
        assert not retries
        assert [e.code for e in give_ups] == [want.code]
        assert [e.code for e in fallbacks] == [want.code]
        assert f"/{FALLBACK}" in fallbacks[0].detail["next_target"]
    elif want.kind == "failed":
        assert not retries and not fallbacks
        assert [e.code for e in give_ups] == [want.code]
    else:
        assert not retries and not fallbacks and not give_ups

    # No permit held afterwards, on any target. The callback settles its tickets from LiteLLM's log events,
    # which for a failed stream arrive in a task shortly after the caller has seen the error.
    if harness.callback is not None:
        assert await eventually(lambda: held_calls() == 0, 3.0), f"{held_calls()} callback tickets still held"
    assert all(count == 0 for count in harness.inflight().values()), harness.inflight()
    if harness.callback is not None:
        snapshot = harness.callback.signals_snapshot(model=f"{provider}/{PRIMARY}")
        indicts = want.code is not None and want.code.indicts_provider
        assert snapshot.consecutive_failures == (1 if indicts else 0)
        assert snapshot.current_inflight == 0

    # Nothing unresolved: the emulator has answered everything, and no task is pending. A hung request is the
    # emulator's own: once it is the only one left, stopping the emulator ends it.
    if fault == "hang":
        assert await eventually(lambda: emulator.in_flight() <= 1, 3.0), f"{emulator.in_flight()} in flight"
        emulator.stop()
    assert await eventually(lambda: emulator.in_flight() == 0, 3.0), f"{emulator.in_flight()} in flight"
    await _assert_no_pending_tasks()


def test_expectations_cover_every_fault() -> None:
    """The tables stay complete when a fault is added."""
    assert set(CODE) == set(FAULTS)
    assert set(MID_STREAM) <= set(FAULTS)
    for fault in FAULTS:
        assert expected("openai", fault, "lc_invoke").kind in ("retried", "fell_back", "failed")
