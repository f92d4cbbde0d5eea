"""Where limiter state lives when ``state_url`` is set (shared across processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import Clock
from .config import ConfigError, ResilientConfig

if TYPE_CHECKING:
    from .policies.rate_limiter import RateLimiter


def build_shared_limiter(target: str, config: ResilientConfig, clock: Clock) -> tuple[RateLimiter, str]:
    raise ConfigError(f"state_url={config.state_url!r}: shared state stores are not available in this build")
