"""ResilientExecutor: retry, rate limit, circuit breaker, in-flight limit and fallback around any call.

Per call: total deadline → for each target in order → [preflight: breaker admission, rate token, in-flight
permit] → attempt under the attempt timeout → record the outcome → retry with backoff (Retry-After aware,
capped, deadline aware) or fall back. The decisions are ``core.CallCore``'s, one sans-IO object; ``core.drive``
and ``core.adrive`` perform them for sync and async calls and for the opening (first chunk) of streams; every
permit is released in ``finally``. Cancellation (``CancelledError``, ``KeyboardInterrupt``,
``GeneratorExit``) is never retried, never counted against a provider and never swallowed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, Generic, TypeVar

from .clock import SYSTEM_CLOCK, Clock
from .config import ResilientConfig
from .core import AttemptContext, CallCore, Candidate, adrive, drive
from .events import EventListener
from .policies.circuit_breaker import CircuitState
from .preflight import PreflightChecker
from .registry import DEFAULT_REGISTRY, Registry, TargetState
from .signals import SignalsSnapshot

T = TypeVar("T")

UNNAMED = "default"
"""The target of a call that names none: its state is private to the executor that runs it."""


class ResilientExecutor:
    """Run calls with retry, rate limiting, circuit breaking, an in-flight limit and fallback.

    Example::

        executor = ResilientExecutor(ResilientConfig(retry=RetryConfig(max_retries=2)))
        result = await executor.execute(call_model, prompt, target="openai/gpt-4o")
        result = executor.execute_sync(call_model_sync, prompt, target="openai/gpt-4o")
        result = await executor.execute_chain([("openai/gpt-4o", call_a), ("anthropic/claude", call_b)])

    A named target's state (breaker, limiter, in-flight permits, retry budget) lives in ``registry`` (the
    process-wide scope by default), shared by every user naming it there; its policy comes from this executor's
    config and clock, and a user asking with a different one gets ``TargetPolicyConflictError``. Calls without a
    target name (``target`` left at ``"default"``) and the names in ``private_targets`` use state private to this
    executor. ``share_state=False`` in the config makes every target private to it. ``clock`` drives every wait.
    """

    def __init__(
        self,
        config: ResilientConfig | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        listeners: Sequence[EventListener] = (),
        private_targets: Iterable[str] = (),
    ) -> None:
        self.config = config if config is not None else ResilientConfig.from_env()
        self._own = Registry()
        if registry is None:
            registry = DEFAULT_REGISTRY if self.config.share_state else self._own
        self.registry = registry
        self.private_targets = frozenset({UNNAMED, *private_targets})
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.preflight = PreflightChecker(self.config, registry=registry, clock=self.clock)
        self.listeners: tuple[EventListener, ...] = tuple(listeners)
        self._states: dict[str, TargetState] = {}
        self._first_contexts: dict[str, AttemptContext] = {}
        # Read on every call: plain attributes beat walking the frozen config each time.
        self.attempt_timeout = self.config.attempt_timeout
        self.total_timeout = self.config.total_timeout
        self.quiet = not self.listeners and self.total_timeout is None
        """No listener and no deadline: a call admitted at once that succeeds needs no ``CallCore`` (see core)."""

    def add_listener(self, listener: EventListener) -> None:
        """Receive every ``ResilienceEvent`` of every call through this executor."""
        self.listeners = (*self.listeners, listener)
        self.quiet = False

    def keep_private(self, targets: Iterable[str]) -> None:
        """Give ``targets`` state private to this executor (names that identify no endpoint of their own)."""
        self.private_targets = self.private_targets | frozenset(targets)

    def first_context(self, target: str) -> AttemptContext:
        """The context of a first attempt on ``target`` with no deadline: the same for every call, so shared."""
        ctx = self._first_contexts.get(target)
        if ctx is None:
            ctx = self._first_contexts[target] = AttemptContext(target, 1, 0, self.attempt_timeout)
        return ctx

    def state(self, target: str) -> TargetState:
        """``target``'s state: from this executor's own scope if private, else from ``registry``."""
        state = self._states.get(target)
        if state is None or state.retired:
            scope = self._own if target in self.private_targets else self.registry
            state = self._states[target] = scope.get(target, self.config, self.clock)
        return state

    # --- async calls --------------------------------------------------------------------------------------
    # Plain methods returning the driver's coroutine: one coroutine frame per call, not two.

    def execute(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, target: str = "default", **kwargs: Any
    ) -> Coroutine[Any, Any, T]:
        """``await fn(*args, **kwargs)`` with the full policy stack for ``target``."""
        # (no ``Candidate`` yet: the happy path calls ``fn`` itself; one is built only if a core takes over)
        return adrive(self, (), call=(target, fn, args, kwargs))

    def execute_chain(self, targets: Sequence[tuple[str, Callable[[], Awaitable[T]]]]) -> Coroutine[Any, Any, T]:
        """Try ``(target, fn)`` pairs in order, falling back on fallbackable errors."""
        return self.run([Candidate(name, call_without_context(fn)) for name, fn in targets])

    def run(
        self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener] = ()
    ) -> Coroutine[Any, Any, T]:
        """The async loop: each candidate's ``fn(ctx)`` returns an awaitable."""
        return adrive(self, candidates, listeners)

    # --- sync calls ---------------------------------------------------------------------------------------

    def execute_sync(self, fn: Callable[..., T], /, *args: Any, target: str = "default", **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with the full policy stack for ``target``, blocking.

        A running sync call cannot be interrupted in Python: ``attempt_timeout`` reaches it as ``ctx.timeout``
        for the client's own timeout (the integrations pass it on); deadlines still bound every wait.
        """
        # (see ``execute``)
        result: T = drive(self, (), call=(target, fn, args, kwargs))
        return result

    def execute_chain_sync(self, targets: Sequence[tuple[str, Callable[[], T]]]) -> T:
        return self.run_sync([Candidate(name, call_without_context(fn)) for name, fn in targets])

    def run_sync(self, candidates: Sequence[Candidate[T]], listeners: Sequence[EventListener] = ()) -> T:
        """The sync loop: each candidate's ``fn(ctx)`` returns the result."""
        result: T = drive(self, candidates, listeners)
        return result

    # --- streams ------------------------------------------------------------------------------------------
    # Opening a stream is an attempt whose result is (stream, first chunk): so retries and fallbacks happen
    # only before the first chunk, through the same core as calls, and the ticket stays held for the stream.

    async def aopen_stream(
        self, candidates: Sequence[Candidate[AsyncIterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> OpenedStream[AsyncIterator[T], T]:
        """Retry and fall back until a candidate's stream yields its first chunk (read once, here); return it
        with the candidate that served it. Its ticket is held until the stream is settled: start ``aserve`` on it
        at once (an async generator never started never runs its ``finally``)."""
        openers = [Candidate(c.target, _async_opener(c.fn), c.provider, c.model) for c in candidates]
        core = CallCore(self, openers, listeners)
        stream, first = await adrive(self, openers, core=core)
        return OpenedStream(core, stream, first, candidates[core.index])

    def open_stream(
        self, candidates: Sequence[Candidate[Iterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> OpenedStream[Iterator[T], T]:
        """Sync ``aopen_stream``; iterate the result with ``serve``."""
        openers = [Candidate(c.target, _sync_opener(c.fn), c.provider, c.model) for c in candidates]
        core = CallCore(self, openers, listeners)
        stream, first = drive(self, openers, core=core)
        return OpenedStream(core, stream, first, candidates[core.index])

    async def astream(
        self, candidates: Sequence[Candidate[AsyncIterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> AsyncIterator[T]:
        """Stream from the first candidate that yields a first chunk.

        Retries and fallbacks happen only before the first chunk; after it, an error surfaces normalised. The
        in-flight permit is held for the stream's life and released when it ends, fails, or is closed early.
        """
        served = aserve(await self.aopen_stream(candidates, listeners))
        try:
            async for chunk in served:
                yield chunk
        finally:
            await served.aclose()  # ``async for`` does not pass a close on: the ticket is settled in its finally

    def stream(
        self, candidates: Sequence[Candidate[Iterator[T]]], listeners: Sequence[EventListener] = ()
    ) -> Iterator[T]:
        """Sync ``astream``."""
        yield from serve(self.open_stream(candidates, listeners))

    # --- signals ------------------------------------------------------------------------------------------

    def signals_snapshot(self, target: str | None = None) -> SignalsSnapshot:
        """Signals for ``target`` (default: the first target this executor used) and every target it used."""
        if not self._states and target is None:
            raise LookupError("this executor has not called any target yet; pass target=...")
        names = list(self._states)
        primary = target or names[0]
        if primary not in self._states:
            self.state(primary)
            names.append(primary)
        targets = {name: self.state(name).signals() for name in names}  # (rebuilt if reset since)
        return SignalsSnapshot.from_targets(primary, targets, time.time())


_EMPTY: Any = object()  # the first "chunk" of a stream that ended at once: an answer, not a failure

S = TypeVar("S")


class OpenedStream(Generic[S, T]):
    """A stream the core opened: the provider's ``stream``, its ``first`` chunk (already read), the ``candidate``
    that served it, and the ``core`` holding its ticket until ``serve``/``aserve`` settles it."""

    __slots__ = ("candidate", "core", "first", "stream")

    def __init__(self, core: CallCore, stream: S, first: T, candidate: Candidate[Any]) -> None:
        self.core = core
        self.stream = stream
        self.first = first
        self.candidate = candidate

    @property
    def target(self) -> str:
        return self.candidate.target

    @property
    def empty(self) -> bool:
        """The stream ended before any chunk (an answer, not a failure)."""
        return self.first is _EMPTY


async def aserve(opened: OpenedStream[AsyncIterator[T], T]) -> AsyncGenerator[T, None]:
    """The chunks of an opened stream; settles its ticket when the stream ends, fails, or is closed early."""
    core, stream = opened.core, opened.stream
    try:
        last: Any = None  # a stream's usage comes with its last chunk
        if opened.first is not _EMPTY:
            last = opened.first
            yield last
            async for last in stream:
                yield last
    except Exception as exc:
        raise core.broke_mid_stream(exc) from exc
    else:
        core.succeeded(last)
    finally:
        core.closed_early()
        await _aclose(stream)


def serve(opened: OpenedStream[Iterator[T], T]) -> Generator[T, None, None]:
    """Sync ``aserve``."""
    core, stream = opened.core, opened.stream
    try:
        last: Any = None
        if opened.first is not _EMPTY:
            last = opened.first
            yield last
            for last in stream:
                yield last
    except Exception as exc:
        raise core.broke_mid_stream(exc) from exc
    else:
        core.succeeded(last)
    finally:
        core.closed_early()
        _close(stream)


def _async_opener(
    open_stream: Callable[[AttemptContext], AsyncIterator[T]],
) -> Callable[[AttemptContext], Awaitable[tuple[AsyncIterator[T], T]]]:
    async def open_and_peek(ctx: AttemptContext) -> tuple[AsyncIterator[T], T]:
        stream = open_stream(ctx)
        try:
            return stream, await stream.__anext__()
        except StopAsyncIteration:
            return stream, _EMPTY
        except BaseException:
            await _aclose(stream)
            raise

    return open_and_peek


def _sync_opener(
    open_stream: Callable[[AttemptContext], Iterator[T]],
) -> Callable[[AttemptContext], tuple[Iterator[T], T]]:
    def open_and_peek(ctx: AttemptContext) -> tuple[Iterator[T], T]:
        stream = iter(open_stream(ctx))
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, _EMPTY
        except BaseException:
            _close(stream)
            raise

    return open_and_peek


def call_without_context(fn: Callable[[], T]) -> Callable[[AttemptContext], T]:
    """Adapt a zero-argument callable to a ``Candidate`` function, which is handed an ``AttemptContext``."""
    return lambda _ctx: fn()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # closing a broken stream must not mask the error being handled
            await close()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


__all__ = ["AttemptContext", "Candidate", "CircuitState", "OpenedStream", "ResilientExecutor", "aserve", "serve"]
