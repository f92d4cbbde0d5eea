"""The LiteLLM proxy's callback module: ``litellm_settings.callbacks: ["custom_callbacks.proxy_handler_instance"]``.

The proxy imports this module from the directory of its config file and registers the instance below. Every
proxied call then passes its deployment's circuit breaker, rate limit and in-flight limit; a refusal answers
the client at once (429 for the local rate limit, 503 for an open circuit or a full in-flight limit, with
Retry-After) and sends nothing to the provider.
"""

from langchain_ailib_resilience import (
    BackpressureConfig,
    CircuitBreakerConfig,
    RateLimiterConfig,
    ResilienceCallback,
    ResilientConfig,
)

config = ResilientConfig(
    # Per deployment: 5 provider failures in a row open its circuit for 30 s, then one probe is let through.
    # A spent quota or budget (E2002) keeps the deployment out for an hour; the Router's fallbacks serve.
    circuit_breaker=CircuitBreakerConfig(failure_threshold=5, cooldown_seconds=30, quota_cooldown_seconds=3600),
    # Per deployment: at most 10 requests a second (bursts of 20); a caller who would wait longer than 1 s is
    # answered 429 with Retry-After instead.
    rate_limiter=RateLimiterConfig(requests_per_second=10, burst_size=20, max_wait=1.0),
    # Per deployment: at most 50 calls in flight; the 51st waits up to 5 s for a slot, then gets a 503.
    backpressure=BackpressureConfig(max_inflight=50, max_wait=5.0),
)

proxy_handler_instance = ResilienceCallback(config)
