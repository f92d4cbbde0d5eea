"""Turning ``model=``/``fallbacks=`` entries into named chat models, with their own retries off.

An entry is a LangChain chat model, a LiteLLM model id (``"openai/gpt-4o"``), LangChain's ``"openai:gpt-4o"``
(built at once with ``init_chat_model``), or a mapping
``{"model": <either>, "target": "name", **chat_litellm_kwargs}``. Each becomes a ``TargetSpec`` at construction
(name, provider and model checked then, so mistakes fail early); model ids become ``ChatLiteLLM`` instances only
on first use (``build_model``), so constructing a wrapper imports nothing heavy beyond the id check.

Why retries are turned off: the wrapper owns retrying. A wrapped ``ChatOpenAI`` (``max_retries=2``) inside our
three retries would send up to 3 × 3 = 9 requests and hide every attempt but the last from the breaker.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import inspect
import io
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from ...targets import endpoint_key, target_key
from ._partners import endpoint_of, without_own_retries

# ChatLiteLLM fields that call-level LiteLLM retries live in: both must be 0 for us to own retrying (the OpenAI
# client inside LiteLLM retries twice by default, and ``num_retries`` overrides it).
_LITELLM_NO_RETRIES: dict[str, int] = {"max_retries": 0, "num_retries": 0}
_SPEC_KEYS = frozenset({"model", "target"})
# LangChain's "provider:model" (init_chat_model); LiteLLM ids put a "/" first ("ollama/llama3:8b").
_LANGCHAIN_ID = re.compile(r"^(?P<provider>[a-z][a-z0-9_]*):(?P<model>[^\s/].*)$")
_build_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One entry of a wrapper's chain: where resilience state lives (``name``) and how to build the model."""

    name: str
    provider: str | None
    model_name: str | None
    source: BaseChatModel | str
    litellm_kwargs: Mapping[str, Any] = field(default_factory=dict)
    private: bool = False
    """The name identifies no endpoint (a chat model instance naming no model): state private to the wrapper."""


def combined_profile(sources: Sequence[BaseChatModel | str]) -> Any:
    """The capabilities all targets share: a key only if every target's profile has it, flags AND-ed, limits
    the smallest; ``None`` when a target's profile is unknown (a LiteLLM id) or nothing is shared."""
    profiles = [source.profile if isinstance(source, BaseChatModel) else None for source in sources]
    if not profiles or any(not profile for profile in profiles):
        return None
    combined: dict[str, Any] = {}
    first = profiles[0]
    assert first is not None
    for key, value in first.items():
        values = [profile.get(key) for profile in profiles if profile is not None and key in profile]
        if len(values) != len(profiles):
            continue
        if all(isinstance(v, bool) for v in values):
            combined[key] = all(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            combined[key] = min(v for v in values if isinstance(v, int))
        elif all(v == value for v in values):
            combined[key] = value
    return combined or None


def describe(value: object) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def parse_targets(
    primary: Any,
    fallbacks: Sequence[Any],
    *,
    shared_litellm_kwargs: Mapping[str, Any],
    standard: Mapping[str, Any] | None = None,
) -> tuple[TargetSpec, ...]:
    """Check every entry and give each a distinct target name (a duplicate gets ``#2``, ``#3``...).

    ``standard``: LangChain's standard parameters (``temperature``, ``timeout``...) for models built from
    ``"provider:model"`` strings.
    """
    if isinstance(fallbacks, str | bytes) or not isinstance(fallbacks, Sequence):
        raise TypeError(f"fallbacks must be a list of chat models or model ids, got {describe(fallbacks)}")
    specs: list[TargetSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate([primary, *fallbacks]):
        where = "model" if index == 0 else f"fallbacks[{index - 1}]"
        spec = _parse_one(entry, where, shared_litellm_kwargs, standard or {})
        count = seen.get(spec.name, 0) + 1
        seen[spec.name] = count
        if count > 1:
            spec = TargetSpec(
                f"{spec.name}#{count}", spec.provider, spec.model_name, spec.source, spec.litellm_kwargs, spec.private
            )
        specs.append(spec)
    return tuple(specs)


def _parse_one(entry: Any, where: str, shared: Mapping[str, Any], standard: Mapping[str, Any]) -> TargetSpec:
    explicit_name: str | None = None
    per_target: Mapping[str, Any] = {}
    if isinstance(entry, Mapping):
        if "model" not in entry:
            raise ValueError(f"{where}: a mapping entry needs a 'model' key (a chat model or a LiteLLM model id)")
        explicit_name = entry.get("target")
        if explicit_name is not None and (not isinstance(explicit_name, str) or not explicit_name.strip()):
            raise ValueError(f"{where}: 'target' must be a non-empty string, got {explicit_name!r}")
        per_target = {k: v for k, v in entry.items() if k not in _SPEC_KEYS}
        entry = entry["model"]
        if per_target and isinstance(entry, str) and _langchain_id(entry) is None:
            check_litellm_kwargs(per_target, where)
        if per_target and not isinstance(entry, str):
            raise ValueError(
                f"{where}: extra keys {sorted(per_target)} only apply to LiteLLM model ids; set them on the "
                "chat model instance instead"
            )
    if isinstance(entry, str) and (langchain_id := _langchain_id(entry)) is not None:
        given = {k: v for k, v in standard.items() if v is not None}
        entry = _init_chat_model(langchain_id, {**given, **per_target}, where)
        _check_model_kwargs(entry, per_target, where)
        per_target = {}
    if isinstance(entry, BaseChatModel):
        provider, model_name = _instance_identity(entry)
        name = explicit_name or instance_target(entry, provider, model_name)
        # An instance that names no model (a test double) names no endpoint either: two such instances of one
        # class are different things, so each wrapper keeps its own state for it rather than sharing by class.
        private = explicit_name is None and model_name is None
        return TargetSpec(name, provider, model_name, entry, private=private)
    if isinstance(entry, str):
        model_id = entry.strip()
        if not model_id or any(ch.isspace() for ch in model_id):
            raise ValueError(f"{where}: {entry!r} is not a LiteLLM model id; expected e.g. 'openai/gpt-4o'")
        if shared:
            check_litellm_kwargs(shared, "litellm_kwargs")
        kwargs = {**shared, **per_target}
        provider, model_name = litellm_identity(model_id, kwargs, where)
        # Named exactly as the LiteLLM integration names the same call, so a ResilientChatModel, the callback
        # and resilient_acompletion share one breaker and limiter for it.
        name = explicit_name or target_key(
            model_id, api_base=kwargs.get("api_base"), custom_llm_provider=kwargs.get("custom_llm_provider")
        )
        return TargetSpec(name, provider, model_name, model_id, kwargs)
    hint = " (a Runnable that is not a chat model: wrap chat models only)" if hasattr(entry, "invoke") else ""
    raise TypeError(
        f"{where} must be a LangChain chat model (BaseChatModel) or a LiteLLM model id such as 'openai/gpt-4o', "
        f"got {describe(entry)}{hint}"
    )


def instance_target(model: BaseChatModel, provider: str | None, model_name: str | None) -> str:
    """``provider/model[@base_url]``: what identifies the endpoint a chat model instance calls.

    Two ``ChatOpenAI`` at different base URLs get separate breakers and limiters; instances at one endpoint
    share them (and with the LiteLLM entry points, which name the same endpoint the same way).
    """
    base = endpoint_of(model)
    if model_name and "/" in model_name and type(model).__module__.startswith("langchain_litellm"):
        # ChatLiteLLM reports a LiteLLM id ("openai/gpt-4o"): named exactly as LiteLLM's own entry points do.
        return target_key(model_name, api_base=base, custom_llm_provider=getattr(model, "custom_llm_provider", None))
    if provider and model_name:
        label = model_name if model_name.startswith(f"{provider}/") else f"{provider}/{model_name}"
    else:
        label = model_name or provider or type(model).__name__.lower()
    return endpoint_key(label, api_base=base)


def _langchain_id(entry: str) -> tuple[str, str] | None:
    """``("openai", "gpt-4o")`` for LangChain's ``"openai:gpt-4o"``; ``None`` for anything else."""
    match = _LANGCHAIN_ID.match(entry.strip())
    if match is None:
        return None
    try:
        from langchain.chat_models import base
    except ImportError:  # no langchain: cannot be a LangChain id
        return None
    known = getattr(base, "_BUILTIN_PROVIDERS", None)
    if isinstance(known, Mapping) and match["provider"] not in known:
        return None
    return match["provider"], match["model"]


def _init_chat_model(langchain_id: tuple[str, str], kwargs: Mapping[str, Any], where: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    provider, model_name = langchain_id
    try:
        model = init_chat_model(model_name, model_provider=provider, **kwargs)
    except Exception as exc:
        raise ValueError(f"{where}: cannot build {provider}:{model_name} with init_chat_model: {exc}") from exc
    if not isinstance(model, BaseChatModel):
        raise TypeError(f"{where}: init_chat_model({provider}:{model_name}) gave {describe(model)}, not a chat model")
    return model


def _check_model_kwargs(model: BaseChatModel, kwargs: Mapping[str, Any], where: str) -> None:
    """Every key must be a field (or its alias) of the model ``init_chat_model`` built: a typo is an error.

    The partner classes move unknown keywords into ``model_kwargs`` with only a warning, so ``api_bsae`` would
    be sent in the request body while the call (and its key) went to the provider's public endpoint.
    """
    fields = type(model).model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias} | {"configurable_fields", "config_prefix"}
    for key in kwargs:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: unknown key {key!r} for {type(model).__name__}{hint}")


def _instance_identity(model: BaseChatModel) -> tuple[str | None, str | None]:
    """The model's own LangSmith provider and model name: the same words its traces use."""
    try:
        params = model._get_ls_params()
    except Exception:  # a model whose tracing params need call arguments still gets a name
        params = {}
    provider = params.get("ls_provider")
    model_name = params.get("ls_model_name")
    if not isinstance(model_name, str) or not model_name:
        for attr in ("model_name", "model", "model_id"):
            value = getattr(model, attr, None)
            if isinstance(value, str) and value:
                model_name = value
                break
        else:
            model_name = None
    return (provider if isinstance(provider, str) and provider else None), model_name


@functools.cache
def _chat_litellm_fields() -> frozenset[str]:
    with _build_lock:  # the first import of langchain_litellm is not thread-safe to race
        from langchain_litellm import ChatLiteLLM
    return frozenset(ChatLiteLLM.model_fields)


@functools.cache
def _litellm_call_params() -> frozenset[str]:
    """What ``litellm.completion`` accepts: its named parameters plus the LiteLLM-wide ones it reads from kwargs."""
    import litellm

    names = {name for name in inspect.signature(litellm.completion).parameters if name not in ("kwargs", "self")}
    try:
        from litellm.types.utils import all_litellm_params

        names.update(all_litellm_params)
    except ImportError:  # pragma: no cover - older LiteLLM
        pass
    return frozenset(names)


def check_litellm_kwargs(kwargs: Mapping[str, Any], where: str) -> None:
    """Every key must be a ``ChatLiteLLM`` field or a ``litellm.completion`` parameter: a typo is an error.

    ``ChatLiteLLM`` ignores unknown keywords, so ``api_bsae`` would silently send the call (and its key) to the
    provider's public endpoint instead of yours.
    """
    known = _chat_litellm_fields() | _litellm_call_params()
    for key in kwargs:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{where}: unknown key {key!r} for a LiteLLM target{hint} (accepted: ChatLiteLLM's fields and "
            "litellm.completion's parameters)"
        )


def litellm_identity(model_id: str, kwargs: Mapping[str, Any], where: str) -> tuple[str, str]:
    """(provider, model) as LiteLLM resolves the id; an id LiteLLM cannot route is a construction error."""
    if importlib.util.find_spec("litellm") is None or importlib.util.find_spec("langchain_litellm") is None:
        raise ImportError(
            f"{where}={model_id!r}: model id strings need LiteLLM; install "
            "'langchain-ailib-resilience[litellm]' (litellm and langchain-litellm), or pass a chat model instance"
        )
    import litellm

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # LiteLLM prints a provider list on failure
            model_name, provider, _, _ = litellm.get_llm_provider(
                model_id,
                custom_llm_provider=kwargs.get("custom_llm_provider"),
                api_base=kwargs.get("api_base"),
            )
    except Exception as exc:
        raise ValueError(
            f"{where}: unknown LiteLLM model id {model_id!r} (LiteLLM cannot tell its provider: "
            f"{str(exc).splitlines()[0][:200]}); write it as 'provider/model', e.g. 'openai/gpt-4o'"
        ) from None
    return str(provider), str(model_name)


def build_model(
    spec: TargetSpec, *, own_retries_off: bool, standard: Mapping[str, Any], output_version: str | None
) -> BaseChatModel:
    """The chat model to call for ``spec``: a ``ChatLiteLLM`` for an id, else the instance (retries off)."""
    if isinstance(spec.source, str):
        model = _chat_litellm(spec, own_retries_off=own_retries_off, standard=standard)
    else:
        model = without_own_retries(spec.source) if own_retries_off else spec.source
    if output_version is not None and model.output_version != output_version:
        model = model.model_copy(update={"output_version": output_version})
    if type(model).__module__.startswith("langchain_litellm"):
        # It sends through LiteLLM: its pre-API-call hook can tell the limiter when a request leaves.
        from ..litellm._departure import install

        install()
    return model


def _chat_litellm(spec: TargetSpec, *, own_retries_off: bool, standard: Mapping[str, Any]) -> BaseChatModel:
    with _build_lock:  # the first import of langchain_litellm is not thread-safe to race
        from langchain_litellm import ChatLiteLLM

    kwargs: dict[str, Any] = {k: v for k, v in standard.items() if v is not None}
    fields = _chat_litellm_fields()
    call_only = {k: v for k, v in spec.litellm_kwargs.items() if k not in fields}
    kwargs.update({k: v for k, v in spec.litellm_kwargs.items() if k in fields})
    if call_only:  # litellm.completion parameters ChatLiteLLM has no field for (api_version...): pass them on
        kwargs["model_kwargs"] = {**call_only, **dict(kwargs.get("model_kwargs") or {})}
    if own_retries_off:
        kwargs["max_retries"] = 0  # langchain-litellm's own tenacity loop
        kwargs["model_kwargs"] = {**_LITELLM_NO_RETRIES, **dict(kwargs.get("model_kwargs") or {})}
    try:
        return ChatLiteLLM(model=spec.source, **kwargs)
    except Exception as exc:
        raise ValueError(f"cannot build ChatLiteLLM for target {spec.name!r}: {exc}") from exc
