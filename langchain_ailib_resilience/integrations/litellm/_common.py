"""What the LiteLLM callback and the resilient completion functions share: config coercion and call ids.

Target naming is core (``..targets``); it is re-exported here for the LiteLLM modules that use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ...config import ConfigError, ResilientConfig
from ...targets import canonical_model, normalise_api_base, provider_and_model, split_target, target_key

# Calls made by resilient_completion/resilient_acompletion carry call ids with this prefix: they are already
# gated and recorded by the executor, so a registered ResilienceCallback leaves them alone.
MANAGED_PREFIX = "ailib-resilience:"


def managed_call_id() -> str:
    return f"{MANAGED_PREFIX}{uuid.uuid4().hex}"


def is_managed(call_id: object) -> bool:
    return isinstance(call_id, str) and call_id.startswith(MANAGED_PREFIX)


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


__all__ = [
    "MANAGED_PREFIX",
    "canonical_model",
    "coerce_config",
    "is_managed",
    "managed_call_id",
    "normalise_api_base",
    "provider_and_model",
    "split_target",
    "str_or_none",
    "target_key",
]
