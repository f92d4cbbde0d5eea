"""What the LiteLLM callback and the resilient completion functions share: target names, config, call ids.

Target names are what per-target state is keyed by, so both entry points (and ``signals_snapshot``) must spell
them the same way from different inputs: the kwargs a caller passes, a Router deployment's ``litellm_params``,
and the resolved values LiteLLM puts in its log events. The name is ``provider/model``, then ``@api_base`` when
the call names an endpoint of its own, then ``#deployment_id`` under the Router::

    openai/gpt-4o
    openai/gpt-4o@http://127.0.0.1:8000/v1
    openai/gpt-4o@https://my-gateway.example/v1#deployment-a
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from ..config import ConfigError, ResilientConfig

# Public endpoints LiteLLM fills in when a call names none. Sync log events carry the resolved endpoint while
# the async hook sees only what the caller passed, so these hosts mean "no api_base" in a target name.
_DEFAULT_HOSTS = frozenset(
    {
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.mistral.ai",
        "api.groq.com",
        "api.deepseek.com",
        "api.cohere.ai",
        "api.cohere.com",
        "api.together.xyz",
        "api.fireworks.ai",
        "openrouter.ai",
        "api.x.ai",
        "api.perplexity.ai",
    }
)

# Calls made by resilient_completion/resilient_acompletion carry call ids with this prefix: they are already
# gated and recorded by the executor, so a registered ResilienceCallback leaves them alone.
MANAGED_PREFIX = "ailib-resilience:"


def managed_call_id() -> str:
    return f"{MANAGED_PREFIX}{uuid.uuid4().hex}"


def is_managed(call_id: object) -> bool:
    return isinstance(call_id, str) and call_id.startswith(MANAGED_PREFIX)


def normalise_api_base(api_base: object) -> str | None:
    """``api_base`` without a trailing slash; ``None`` for none, empty, or a provider's public endpoint."""
    if not isinstance(api_base, str):
        return None
    text = api_base.strip().rstrip("/")
    if not text:
        return None
    try:
        host = (urlsplit(text).hostname or "").lower()
    except ValueError:
        return text
    return None if host in _DEFAULT_HOSTS else text


@functools.lru_cache(maxsize=1024)
def provider_and_model(model: str, custom_llm_provider: str | None = None) -> tuple[str | None, str]:
    """(provider, model name) as LiteLLM resolves ``model``; ``(None, model)`` when it cannot tell."""
    import litellm

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # LiteLLM prints a provider list when it cannot tell
            name, provider, _, _ = litellm.get_llm_provider(model, custom_llm_provider=custom_llm_provider)
    except Exception:
        return None, model
    if not isinstance(provider, str) or not provider or not isinstance(name, str) or not name:
        return None, model
    return provider, name


def canonical_model(model: str, custom_llm_provider: str | None = None) -> str:
    """``provider/model`` (``"gpt-4o"`` → ``"openai/gpt-4o"``), or ``model`` as given when LiteLLM cannot tell."""
    provider, name = provider_and_model(model, custom_llm_provider)
    return f"{provider}/{name}" if provider else model


def target_key(
    model: str,
    *,
    api_base: object = None,
    deployment_id: object = None,
    custom_llm_provider: object = None,
) -> str:
    """The state key for a call: ``provider/model[@api_base][#deployment_id]``."""
    provider = custom_llm_provider if isinstance(custom_llm_provider, str) and custom_llm_provider else None
    key = canonical_model(model, provider)
    base = normalise_api_base(api_base)
    if base:
        key += f"@{base}"
    if isinstance(deployment_id, str) and deployment_id:
        key += f"#{deployment_id}"
    return key


_TARGET = re.compile(r"^(?P<model>.+?)(?:@(?P<base>[A-Za-z][\w+.-]*://[^#]*))?(?:#(?P<deployment>.+))?$")


def split_target(target: str) -> tuple[str, str | None, str | None]:
    """(model, api_base, deployment id) of a target name; a model may itself contain ``@`` (Vertex versions)."""
    match = _TARGET.match(target)
    if match is None:
        return target, None, None
    return match["model"], match["base"], match["deployment"]


def model_of_target(target: str) -> str:
    """The ``provider/model`` part of a target name."""
    return split_target(target)[0]


def coerce_config(config: object) -> ResilientConfig:
    """``None`` (environment), a ``ResilientConfig``, or a mapping of its fields; anything else is an error."""
    if config is None:
        return ResilientConfig.from_env()
    if isinstance(config, ResilientConfig):
        return config
    if isinstance(config, Mapping):
        unknown = sorted(str(key) for key in config if key not in ResilientConfig.model_fields)
        if unknown:
            known = ", ".join(ResilientConfig.model_fields)
            raise ConfigError(f"unknown resilience config field(s) {', '.join(unknown)}; known fields: {known}")
        try:
            return ResilientConfig(**{str(key): value for key, value in config.items()})
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise ConfigError(f"invalid resilience configuration: {details}") from None
    raise TypeError(f"config must be a ResilientConfig or a mapping of its fields, got {type(config).__name__}")


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
