"""``ResilienceCallback``: the resilience gate and outcome recorder as a LiteLLM ``CustomLogger``.

How LiteLLM's hooks are used (checked against litellm 1.110; see ``tests/litellm``):

- ``async_pre_call_deployment_hook`` is the only hook whose exception stops a call: it runs before every async
  call (and every Router attempt) and the caller gets what it raises. The gate (breaker admission, rate token,
  in-flight permit) runs there and holds a ``Ticket`` per LiteLLM call id.
- The ticket is settled by the first outcome that arrives: ``async_post_call_success_deployment_hook``
  (non-stream success, inline), ``async_post_call_failure_deployment_hook`` (each failed attempt, a stream that
  fails before its first chunk included), ``async_log_success_event`` (a stream's end, cache hits),
  ``async_log_failure_event`` (mid-stream failures) or their sync twins, which LiteLLM also fires for some async
  calls. Later events for the same call find nothing and do nothing, so none is counted twice.
- A stream the caller abandons fires no event at all. The ticket is released when LiteLLM's logging object for
  the call is garbage-collected (``weakref.finalize``; in CPython, as soon as the last reference to the stream
  goes). The release is handed to a worker thread because finalizers may run inside the garbage collector, at
  a point where taking a policy's lock could deadlock.
- Sync ``litellm.completion`` runs no hook that can refuse it, so it cannot be gated; its outcomes
  (``log_success_event``/``log_failure_event``) still feed the breaker. The same holds for the Router's sync
  ``completion`` (neither the filter nor the pre-call hook runs). ``resilient_completion`` gates sync calls.
- Router: ``async_filter_deployments`` drops deployments whose circuit is open (or half-open with its probes
  busy), so the Router picks a sibling at once. When every deployment of a group is blocked the list is left
  alone: an empty list makes the Router raise ``RouterRateLimitError`` and retry the group after backoff
  sleeps. Instead our gate's rejection carries ``num_retries = 0``, which the Router reads off a failed
  attempt as "do not retry this group": it neither sleeps, nor retries, nor cools the deployment down, and goes
  to the next fallback group at once (or raises the ``ResilienceError`` to the caller). Once in its retry loop,
  though, the Router retries whatever fails, counting from the first failure; so an attempt whose failure would
  open the circuit of the group's last admissible deployment goes out with ``num_retries = 0`` in its kwargs,
  which LiteLLM copies onto the exception the Router sees.
- LiteLLM de-duplicates loggers by class name plus public primitive attributes, so every instance carries a
  unique ``instance_id``: two callbacks with different configurations both receive every event.
- Under the LiteLLM proxy server (``litellm_settings.callbacks``) the gate is the same Router hook; the proxy
  only hooks (``async_post_call_failure_hook``, ``async_post_call_response_headers_hook``, see ``_proxy``) turn
  a refusal into a 429/503 with Retry-After and add state headers. The gate is deliberately not in the proxy's
  ``async_pre_call_hook``: that runs before routing, when no deployment is chosen and fallbacks are unknown.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ... import departures
from ...clock import SYSTEM_CLOCK, Clock
from ...config import ResilientConfig
from ...errors.classify import classify_error
from ...errors.codes import StandardErrorCode
from ...errors.exceptions import DeadlineExceededError, ResilienceError
from ...events import EventListener, ResilienceEvent, call_listeners, emit, rejection_reason
from ...policies.circuit_breaker import BreakerPermit, CircuitState
from ...preflight import PreflightChecker, Ticket
from ...registry import DEFAULT_REGISTRY, Registry, TargetState
from ...signals import SignalsSnapshot
from ...token_estimate import lazy_cost
from . import _proxy
from ._common import (
    canonical_model,
    coerce_config,
    is_managed,
    normalise_api_base,
    provider_and_model,
    split_target,
    str_or_none,
    target_key,
)

# Sync call types whose outcomes are recorded without a gate (their async twins are gated instead).
_SYNC_CALL_TYPES = frozenset(
    {
        "completion",
        "text_completion",
        "embedding",
        "image_generation",
        "transcription",
        "speech",
        "rerank",
        "responses",
        "moderation",
        "anthropic_messages",
    }
)

_instances = itertools.count(1)

# Hooks the proxy server runs only when defined on the callback's own class (see __init_subclass__).
_PROXY_HOOKS = ("async_post_call_failure_hook", "async_post_call_response_headers_hook")


class _Held:
    """A passed gate waiting for its call's outcome, and who listens to that call."""

    __slots__ = ("finalizer", "listeners", "stream", "ticket")

    def __init__(self, ticket: Ticket, stream: bool, listeners: tuple[EventListener, ...] = ()) -> None:
        self.ticket = ticket
        self.stream = stream
        self.listeners = listeners
        self.finalizer: weakref.finalize[Any, Any] | None = None

    def detach(self) -> None:
        if self.finalizer is not None:
            self.finalizer.detach()

    def succeeded(self, answer: Any = None, **detail: Any) -> None:
        """The call answered (or was answered from cache, or abandoned): settle, then tell its listeners."""
        if detail:
            self.ticket.release()
        else:
            self.ticket.success(answer)
        if self.listeners:
            emit(self.listeners, ResilienceEvent("success", self.ticket.target, detail=detail), subscribers=False)

    def failed(self, error: ResilienceError, mid_stream: bool) -> None:
        detail = {"mid_stream": True} if mid_stream else {}
        emit(self.listeners, ResilienceEvent("failure", self.ticket.target, 1, error.code, None, error, detail))


class _Ledger:
    """Tickets of calls in flight: LiteLLM call id → target state → held ticket.

    Module-wide, so that a callback listed twice, or two callbacks sharing one registry, gate and count each
    call once per target state; and any instance that hears an outcome settles it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, dict[int, _Held]] = {}

    def holds(self, call_id: str, state: TargetState) -> bool:
        with self._lock:
            return id(state) in self._calls.get(call_id, {})

    def put(self, call_id: str, state: TargetState, held: _Held) -> bool:
        with self._lock:
            entries = self._calls.setdefault(call_id, {})
            if id(state) in entries:
                return False
            entries[id(state)] = held
            return True

    def take(self, call_id: str, *, streams: bool = True) -> list[_Held]:
        """Remove and return the call's held tickets (only non-stream ones when ``streams`` is False)."""
        with self._lock:
            entries = self._calls.get(call_id)
            if not entries:
                return []
            taken = [held for held in entries.values() if streams or not held.stream]
            if len(taken) == len(entries):
                del self._calls[call_id]
            else:
                for key in [key for key, held in entries.items() if streams or not held.stream]:
                    del entries[key]
            return taken

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._calls.values())


_LEDGER = _Ledger()
_ABANDONED: queue.SimpleQueue[str] = queue.SimpleQueue()
_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None


def _on_call_collected(call_id: str) -> None:
    # Runs inside a finalizer, possibly in the garbage collector: SimpleQueue.put is safe there, locks are not.
    _ABANDONED.put(call_id)


def _reap() -> None:
    while True:
        call_id = _ABANDONED.get()
        for held in _LEDGER.take(call_id):
            held.succeeded(closed_early=True)


def _ensure_reaper() -> None:
    global _reaper
    if _reaper is not None and _reaper.is_alive():
        return
    with _reaper_lock:
        if _reaper is None or not _reaper.is_alive():
            _reaper = threading.Thread(target=_reap, name="ailib-resilience-litellm-reaper", daemon=True)
            _reaper.start()


def held_calls() -> int:
    """Tickets held for LiteLLM calls in flight, across all callbacks (for tests and diagnostics)."""
    return len(_LEDGER)


class ResilienceCallback(CustomLogger):
    """Gate every async LiteLLM call on its target's circuit, rate limit and in-flight limit; record outcomes.

    Example::

        callback = ResilienceCallback(ResilientConfig(circuit_breaker=CircuitBreakerConfig(failure_threshold=3)))
        litellm.callbacks.append(callback)          # or callback.register()
        await litellm.acompletion(model="openai/gpt-4o", messages=...)   # raises CircuitOpenError when open
        callback.signals_snapshot(model="openai/gpt-4o").circuit_state

    An open circuit, a full in-flight limit, or a rate-limit wait past its bound raises a ``ResilienceError``
    before any request is sent. State is kept per target: model, plus ``api_base`` when given, plus the
    deployment id under the Router. Sync ``litellm.completion`` cannot be gated (LiteLLM runs no blocking hook
    for it) but its outcomes are recorded; use ``resilient_completion`` to gate sync calls. The callback does
    not retry: for retries and fallbacks use the Router or ``resilient_acompletion``. LiteLLM's SDK-level
    ``num_retries`` (and ``retry_policy``) would resend a failed call without passing the gate again, so the
    callback turns them off for the calls it admits (the Router's own retries are untouched: each passes the gate).
    It cannot for a call it refuses (LiteLLM then retries from its own copy of the kwargs, running no hook), so
    it warns: leave ``num_retries`` unset or 0 when using this callback.

    Listing the same instance twice in ``litellm.callbacks`` is harmless: each call is gated and counted once
    (so are calls seen by two callbacks sharing a registry). ``register()`` adds it once; ``unregister()``
    removes every copy from LiteLLM's lists. Two instances with different configurations both receive every
    event; with separate registries (``share_state=False`` or ``registry=``) each keeps its own state.

    Args:
        config: a ``ResilientConfig`` or a mapping of its fields; default ``ResilientConfig.from_env()``.
        registry: where per-target state lives; default the process-wide one (shared with every other user of
            the same target), or a private one when ``config.share_state`` is False.
        clock: time source for cooldowns and rate waits (``FakeClock`` in tests).
    """

    def __init__(
        self,
        config: ResilientConfig | Mapping[str, Any] | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.config = coerce_config(config)
        if registry is None:
            registry = DEFAULT_REGISTRY if self.config.share_state else Registry()
        self.registry = registry
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.preflight = PreflightChecker(self.config, registry=registry, clock=self.clock)
        # LiteLLM keys loggers by class name and public str/bool/int attributes and silently drops a second
        # instance with the same key; this attribute makes every instance distinct.
        self.instance_id = f"{next(_instances)}-{uuid.uuid4().hex[:12]}"
        self._seen_lock = threading.Lock()
        self._targets: dict[str, None] = {}  # an ordered set of the targets this callback has gated or recorded
        self._groups: dict[str, dict[str, None]] = {}  # Router model group → the targets gated for it
        self._members: dict[str, tuple[str, ...]] = {}  # Router model group → its deployments' targets
        self._states: dict[str, TargetState] = {}
        self._warned_sdk_retries = False
        self._warned_sdk_rejection = False
        departures.enable()  # its own ``log_pre_api_call`` sees each gated request leave

    def __repr__(self) -> str:
        return f"ResilienceCallback(instance_id={self.instance_id!r}, targets={list(self._targets)!r})"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The proxy runs some hooks only when the callback's own class defines them (it checks the class's
        # __dict__, not its MRO): a subclass keeps them by having them copied in.
        super().__init_subclass__(**kwargs)
        for name in _PROXY_HOOKS:
            if name not in cls.__dict__:
                setattr(cls, name, getattr(ResilienceCallback, name))

    # --- registration -------------------------------------------------------------------------------------

    def register(self) -> ResilienceCallback:
        """Append to ``litellm.callbacks`` unless already there; returns ``self``."""
        import litellm

        if not any(callback is self for callback in litellm.callbacks):
            litellm.callbacks.append(self)
        return self

    def unregister(self) -> None:
        """Remove from every LiteLLM callback list (``litellm.callbacks`` and the internal copies).

        Calls already admitted keep their permits until their logging objects are collected.
        """
        import litellm

        litellm.logging_callback_manager.remove_callback_from_all_lists(self, require_self=False)

    # --- the gate -----------------------------------------------------------------------------------------

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict[str, Any] | None:
        """Admit the call or raise a ``ResilienceError`` before anything is sent."""
        call_id = kwargs.get("litellm_call_id")
        model = kwargs.get("model")
        if not isinstance(call_id, str) or not isinstance(model, str) or is_managed(call_id):
            return None
        target, group = _target_of_request(model, kwargs)
        state = self._state(target)
        if _LEDGER.holds(call_id, state):
            return None  # this callback is listed twice, or a twin sharing our registry admitted the call
        listeners = call_listeners()
        try:
            ticket = await self.preflight.acheck(state, cost=lazy_cost(model, kwargs.get("messages") or [], kwargs))
        except ResilienceError as error:
            detail = {"reason": rejection_reason(error)}
            emit(listeners, ResilienceEvent("rejected", target, 1, error.code, error.retry_after, error, detail))
            emit(listeners, ResilienceEvent("failure", target, 1, error.code, None, error))
            # The Router reads an error's num_retries: 0 means no retry and no cooldown for this group, so it
            # goes to its next fallback at once instead of sleeping and asking our gate again.
            error.num_retries = 0  # type: ignore[attr-defined]
            if group is None and _sdk_retries(kwargs) and not self._warned_sdk_rejection:
                self._warned_sdk_rejection = True
                warnings.warn(
                    "ResilienceCallback refused a call that has LiteLLM num_retries/retry_policy set: LiteLLM "
                    "resends such a call without running any hook, past the gate; pass num_retries=0 (or use "
                    "resilient_acompletion)",
                    stacklevel=2,
                )
            raise
        held = _Held(ticket, kwargs.get("stream") is True, listeners)
        if not _LEDGER.put(call_id, state, held):
            ticket.release()
            return None
        if listeners:
            provider, name = provider_and_model(model, str_or_none(kwargs.get("custom_llm_provider")))
            detail = {"provider": provider, "model": name} if provider else {}
            emit(listeners, ResilienceEvent("attempt", target, 1, detail=detail), subscribers=False)
        logging_obj = kwargs.get("litellm_logging_obj")
        if logging_obj is not None:
            try:
                held.finalizer = weakref.finalize(logging_obj, _on_call_collected, call_id)
                _ensure_reaper()
            except TypeError:  # not weakly referenceable: an abandoned stream keeps its permit
                pass
        self._remember(target, group)
        if group is None:
            return self._without_sdk_retries(kwargs)
        if self._last_admissible_chance(state, target, group):
            kwargs["num_retries"] = 0
            return kwargs
        return None  # the Router retries through the gate: its retries stay on

    def _without_sdk_retries(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """Turn off LiteLLM's SDK-level retries: they resend a failed call without passing the gate again.

        The OpenAI client inside LiteLLM also retries twice by default, invisibly: the breaker would count three
        requests as one failure. Unless the caller set ``max_retries`` themselves, it is set to 0 too.
        """
        client_retries_off = kwargs.get("max_retries") is None
        if client_retries_off:
            kwargs["max_retries"] = 0
        if not _sdk_retries(kwargs):
            return kwargs if client_retries_off else None
        kwargs["num_retries"] = 0
        kwargs.pop("retry_policy", None)
        if not self._warned_sdk_retries:
            self._warned_sdk_retries = True
            warnings.warn(
                "ResilienceCallback turned off LiteLLM's num_retries/retry_policy for the calls it gates: those "
                "retries resend the call without passing the gate; use resilient_acompletion or the Router "
                "for retries",
                stacklevel=2,
            )
        return kwargs

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list[Any],
        messages: Any,
        request_kwargs: dict[str, Any] | None = None,
        parent_otel_span: Any = None,
    ) -> list[Any]:
        """Drop deployments whose circuit would refuse a call, unless that would drop them all."""
        targets = [_target_of_deployment(d) for d in healthy_deployments]
        with self._seen_lock:
            self._members[model] = tuple(target for target in targets if target is not None)
        keep = [d for d, target in zip(healthy_deployments, targets, strict=True) if not self._blocked(target)]
        return keep if keep else healthy_deployments

    def _last_admissible_chance(self, state: TargetState, target: str, group: str) -> bool:
        """Whether a provider failure of this Router attempt would open the circuit of the group's last
        admissible deployment: the Router should then not retry the group (it would only meet our gate, after
        a backoff sleep each time) but go to its fallback.

        Once in its retry loop the Router retries whatever fails, reading the retry count off the *first*
        failure, whose ``num_retries`` LiteLLM copies from the attempt's kwargs; so it is set there up front.
        A success ignores it; a failure that does not open the circuit (a 400, a quota error) is then not
        retried in the group either, which for those is no loss.
        """
        if not state.config.circuit_breaker.enabled or state.config.circuit_breaker.mode != "consecutive":
            return False
        breaker = state.breaker
        current = breaker.state
        if current is CircuitState.CLOSED:
            if breaker.failure_count + 1 < breaker.config.failure_threshold:
                return False
        elif current is not CircuitState.HALF_OPEN:
            return False
        siblings = set(self._members.get(group, ())) | set(self._groups.get(group, {}))
        siblings.discard(target)
        return all(self._blocked(sibling) for sibling in siblings)

    def _blocked(self, target: str | None) -> bool:
        if target is None:
            return False
        state = self.registry.peek(target)
        if state is None:
            return False
        breaker = state.breaker
        current = breaker.state
        if current is CircuitState.OPEN:
            return True
        return current is CircuitState.HALF_OPEN and breaker.probes_in_flight >= breaker.config.half_open_max_calls

    # --- outcomes -----------------------------------------------------------------------------------------

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        # Non-stream answers only: for a stream this would mark the start, and its end comes as a log event.
        call_id = request_data.get("litellm_call_id")
        if isinstance(call_id, str):
            for held in _LEDGER.take(call_id, streams=False):
                held.detach()
                held.succeeded(response)  # its headers and usage teach the target, as in the log event
        return None

    async def async_post_call_failure_deployment_hook(
        self,
        request_data: Mapping[str, Any],
        exception: Exception,
        call_type: Any,
        fallback_depth: int | None = None,
    ) -> None:
        call_id = request_data.get("litellm_call_id")
        if isinstance(call_id, str):
            _settle_failure(_LEDGER.take(call_id), exception, mid_stream=False)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._on_success(kwargs, response_obj)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._on_failure(kwargs)

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        departures.departed()  # the gated request leaves now: its limiter counts the spacing from here

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_success(kwargs, response_obj)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._on_failure(kwargs)

    def _on_success(self, kwargs: Mapping[str, Any], answer: Any = None) -> None:
        call_id = kwargs.get("litellm_call_id")
        if not isinstance(call_id, str) or is_managed(call_id):
            return
        taken = _LEDGER.take(call_id)
        for held in taken:
            held.detach()
            if kwargs.get("cache_hit") is True:
                held.succeeded(cache_hit=True)  # answered from LiteLLM's cache: says nothing about the provider
            else:
                held.succeeded(answer)  # its headers and usage teach the target (adaptive, token limits)
        if not taken and _is_sync_event(kwargs) and kwargs.get("cache_hit") is not True:
            self._record_ungated(kwargs, None)

    def _on_failure(self, kwargs: Mapping[str, Any]) -> None:
        call_id = kwargs.get("litellm_call_id")
        if not isinstance(call_id, str) or is_managed(call_id):
            return
        exception = kwargs.get("exception")
        error: BaseException = exception if isinstance(exception, BaseException) else RuntimeError("unknown failure")
        taken = _LEDGER.take(call_id)
        if taken:
            _settle_failure(taken, error, mid_stream=True)  # log events report streams that broke once started
        elif _is_sync_event(kwargs):
            self._record_ungated(kwargs, error)

    def _record_ungated(self, kwargs: Mapping[str, Any], error: BaseException | None) -> None:
        """A sync call's outcome: no gate ran, so there is no ticket; the breaker still learns from it."""
        resolved = _target_of_event(kwargs)
        if resolved is None:
            return
        target, group = resolved
        code: StandardErrorCode | None = None
        if error is not None:
            normalised = classify_error(error)
            if normalised.local or isinstance(normalised, DeadlineExceededError):
                return
            code = normalised.code
        state = self._state(target)
        permit = BreakerPermit(state.breaker.generation)
        if code is None:
            state.breaker.record_success(permit)
        else:
            state.breaker.record_failure(permit, code)
        self._remember(target, group)

    # --- the LiteLLM proxy server -------------------------------------------------------------------------

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> Any:
        """Proxy only: our gate's refusal goes to the client as 429/503 with Retry-After, not as a 500."""
        error = _proxy.local_rejection(original_exception)
        return _proxy.http_exception(error) if error is not None else None

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        """Proxy only: the circuit state and what is left of the rate and in-flight limits, as headers.

        They describe the deployment that served (or refused) the call, else the worst deployment of the
        requested model group this callback has seen.
        """
        deployment = _proxy.deployment_of(data, litellm_call_info)
        names: list[str] = []
        if deployment is not None:
            names = [name for name in self._targets if split_target(name)[2] == deployment]
        if not names:
            group = _proxy.model_group_of(data)
            names = list(self._groups.get(group, {})) if group is not None else []
        signals = [state.signals() for state in map(self.registry.peek, names) if state is not None]
        return _proxy.state_headers(signals) or None

    # --- signals ------------------------------------------------------------------------------------------

    def _state(self, target: str) -> TargetState:
        """The target's state, from a per-callback cache that follows the registry (``reset_registry`` included)."""
        state = self._states.get(target)
        if state is None or self.registry.peek(target) is not state:
            state = self._states[target] = self.preflight.state(target)
        return state

    def _remember(self, target: str, group: str | None) -> None:
        if target in self._targets and (group is None or target in self._groups.get(group, {})):
            return
        with self._seen_lock:
            self._targets[target] = None
            if group is not None:
                self._groups.setdefault(group, {})[target] = None

    @property
    def targets(self) -> list[str]:
        """The targets this callback has gated or recorded, in first-use order."""
        return list(self._targets)

    def signals_snapshot(
        self, model: str | None = None, *, api_base: str | None = None, deployment_id: str | None = None
    ) -> SignalsSnapshot:
        """Signals for ``model``: a target name, a model id (every endpoint and deployment of it this process
        used), or a Router model group. With ``api_base``/``deployment_id``, exactly that target.

        Without ``model``: every target this callback has seen, the first as the headline.
        """
        if model is None:
            names = [name for name in self._targets if self.registry.peek(name) is not None]
            if not names:
                raise LookupError("this callback has not seen any call yet; pass model=...")
        else:
            names = self._resolve(model, api_base, deployment_id)
        targets = {}
        for name in names:
            state = self.registry.peek(name)
            if state is not None:
                targets[name] = state.signals()
        return SignalsSnapshot.from_targets(names[0], targets, time.time())

    def _resolve(self, model: str, api_base: str | None, deployment_id: str | None) -> list[str]:
        known = self.registry.targets()
        wanted_model, named_base, named_deployment = split_target(model)
        if (named_base or named_deployment) and model in known:
            return [model]  # a full target name
        names: list[str] = []
        if api_base is None and deployment_id is None:
            names = [name for name in self._groups.get(model, {}) if name in known]
        if not names:
            wanted_model = canonical_model(wanted_model)
            wanted_base = normalise_api_base(api_base)
            for name in known:
                name_model, name_base, name_deployment = split_target(name)
                if (
                    name_model == wanted_model
                    and (api_base is None or name_base == wanted_base)
                    and (deployment_id is None or name_deployment == deployment_id)
                ):
                    names.append(name)
        if not names:
            listed = ", ".join(sorted(known)) or "none yet"
            raise KeyError(f"no resilience state for model {model!r} in this process (known targets: {listed})")
        # The headline: the bare model's own target if there is one, else the first this callback used.
        order = {name: index for index, name in enumerate(self._targets)}
        return sorted(names, key=lambda name: (name != model, order.get(name, len(order))))


# --- helpers ----------------------------------------------------------------------------------------------


def _settle_failure(taken: list[_Held], exception: BaseException, *, mid_stream: bool) -> None:
    if not taken:
        return
    error = classify_error(exception)
    for held in taken:
        held.detach()
        if error.local or isinstance(error, DeadlineExceededError):
            held.ticket.release()  # another gate refused the call: nothing was sent
        elif held.stream and error.code is StandardErrorCode.UNKNOWN:
            held.ticket.failure(StandardErrorCode.SERVER_ERROR)  # the provider's stream broke off
        else:
            held.ticket.failure(error)
        held.failed(error, mid_stream and held.stream)


def _sdk_retries(kwargs: Mapping[str, Any]) -> bool:
    """Whether LiteLLM's SDK wrapper would retry this (non-Router) call: ``num_retries`` or ``retry_policy``."""
    import litellm

    retries = kwargs.get("num_retries")
    if retries is None:
        retries = litellm.num_retries
    return (isinstance(retries, int) and retries > 0) or bool(kwargs.get("retry_policy"))


def _router_group(kwargs: Mapping[str, Any]) -> str | None:
    for key in ("metadata", "litellm_metadata"):
        metadata = kwargs.get(key)
        if isinstance(metadata, Mapping) and isinstance(metadata.get("model_group"), str):
            return str(metadata["model_group"])
    return None


def _deployment_id(kwargs: Mapping[str, Any]) -> str | None:
    for source in (kwargs, kwargs.get("metadata"), kwargs.get("litellm_metadata")):
        if isinstance(source, Mapping):
            info = source.get("model_info")
            if isinstance(info, Mapping) and str_or_none(info.get("id")):
                return str(info["id"])
    return None


def _target_of_request(model: str, kwargs: Mapping[str, Any]) -> tuple[str, str | None]:
    group = _router_group(kwargs)
    target = target_key(
        model,
        api_base=kwargs.get("api_base") or kwargs.get("base_url"),
        deployment_id=_deployment_id(kwargs) if group is not None else None,
        custom_llm_provider=kwargs.get("custom_llm_provider"),
    )
    return target, group


def _target_of_deployment(deployment: Any) -> str | None:
    if not isinstance(deployment, Mapping):
        return None
    params = deployment.get("litellm_params")
    if not isinstance(params, Mapping) or not isinstance(params.get("model"), str):
        return None
    info = deployment.get("model_info")
    return target_key(
        params["model"],
        api_base=params.get("api_base") or params.get("base_url"),
        deployment_id=info.get("id") if isinstance(info, Mapping) else None,
        custom_llm_provider=params.get("custom_llm_provider"),
    )


def _is_sync_event(kwargs: Mapping[str, Any]) -> bool:
    params = kwargs.get("litellm_params")
    if isinstance(params, Mapping) and params.get("acompletion") is True:
        return False
    call_type = kwargs.get("call_type")
    return isinstance(call_type, str) and call_type in _SYNC_CALL_TYPES


def _target_of_event(kwargs: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """The target of a log event, whose kwargs hold LiteLLM's resolved values (model without provider prefix,
    the endpoint filled in)."""
    model = kwargs.get("model")
    if not isinstance(model, str) or not model:
        return None
    params = kwargs.get("litellm_params")
    params = params if isinstance(params, Mapping) else {}
    metadata = params.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    provider = str_or_none(kwargs.get("custom_llm_provider")) or str_or_none(params.get("custom_llm_provider"))
    group = metadata.get("model_group") if isinstance(metadata.get("model_group"), str) else None
    deployment_id = None
    if group is not None:
        info = metadata.get("model_info")
        deployment_id = str_or_none(info.get("id")) if isinstance(info, Mapping) else None
        deployment_id = deployment_id or str_or_none(kwargs.get("model_id"))
    full_model = model if provider is None or model.startswith(f"{provider}/") else f"{provider}/{model}"
    target = target_key(
        full_model,
        api_base=normalise_api_base(params.get("api_base")),
        deployment_id=deployment_id,
        custom_llm_provider=provider,
    )
    return target, group
