"""What ``ResilienceCallback`` does only under the LiteLLM proxy server: HTTP answers and response headers.

Inside the proxy the gate still runs in the Router's per-attempt hook (``async_pre_call_deployment_hook``) and
refuses with our ``ResilienceError``: the Router reads its ``num_retries = 0`` and goes to the next fallback group
at once. Only when nothing is left does the proxy answer its client, and there an exception without an HTTP
status becomes a 500 (logged as "a bug in LiteLLM"). The proxy's ``async_post_call_failure_hook`` may hand back
an ``HTTPException`` to send instead; ``http_exception`` builds it: 429 for a local rate limit, 503 for an open
circuit or a full in-flight limit, with ``Retry-After`` in whole seconds (RFC 9110 allows no fractions).

Response headers (success and failure alike) say what the proxy's clients can act on: the circuit state, the
rate tokens and in-flight slots left of the deployment that served (or refused) the call. Never a target name:
it holds the deployment's endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ...errors.codes import StandardErrorCode
from ...errors.exceptions import ResilienceError
from ...signals import TargetSignals
from ._common import str_or_none

HEADER_CIRCUIT_STATE = "x-resilience-circuit-state"
HEADER_RATE_REMAINING = "x-resilience-rate-remaining"
HEADER_INFLIGHT_REMAINING = "x-resilience-inflight-remaining"
HEADER_COOLDOWN_REMAINING = "x-resilience-cooldown-remaining"
HEADER_CODE = "x-resilience-error-code"

# Worst first: the state reported for a model group when no single deployment is known.
_SEVERITY = {"open": 0, "half_open": 1, "closed": 2}


def is_proxy_call(kwargs: Mapping[str, Any]) -> bool:
    """Whether a call came through the LiteLLM proxy server (it passes the client's request along)."""
    return isinstance(kwargs.get("proxy_server_request"), Mapping)


def local_rejection(exception: BaseException | None) -> ResilienceError | None:
    """Our own gate's refusal (no request sent), found on the exception or what it wraps; else ``None``."""
    seen = 0
    current: BaseException | None = exception
    while current is not None and seen < 4:
        if isinstance(current, ResilienceError):
            return current if current.local else None
        original = getattr(current, "original_exception", None)
        current = original if isinstance(original, BaseException) else current.__cause__
        seen += 1
    return None


def http_status(error: ResilienceError) -> int:
    """429 for a local rate limit (the caller is too fast), 503 for an open circuit or a full in-flight limit."""
    return 429 if error.code is StandardErrorCode.RATE_LIMITED else 503


def retry_after_header(seconds: float | None) -> str:
    """Whole seconds, rounded up and at least 1: a client told ``0`` would come straight back."""
    if seconds is None or not math.isfinite(seconds):
        return "1"
    return str(max(1, math.ceil(seconds)))


def http_exception(error: ResilienceError) -> Any:
    """The ``fastapi.HTTPException`` the proxy sends for our refusal (``None`` when fastapi is missing)."""
    try:
        from fastapi import HTTPException
    except ImportError:  # not running under the proxy: the caller keeps the ResilienceError
        return None
    status = http_status(error)
    retry_after = retry_after_header(error.retry_after)
    kind = {
        "CircuitOpenError": "the circuit of the deployment is open",
        "BackpressureError": "the deployment's in-flight limit is full",
        "RateLimitExceededError": "the deployment's rate limit is reached",
    }.get(type(error).__name__, "the resilience gate refused the call")
    message = f"{kind}; no request was sent to the provider. Retry after {retry_after}s."
    return HTTPException(
        status_code=status,
        detail={
            "error": {
                "message": message,
                "type": "rate_limit_error" if status == 429 else "service_unavailable",
                "code": error.code.value,
            }
        },
        headers={"retry-after": retry_after, HEADER_CODE: error.code.value},
    )


def deployment_of(data: Mapping[str, Any], call_info: Mapping[str, Any] | None) -> str | None:
    """The id of the deployment that served or refused the call, if the Router picked one."""
    sources: list[Any] = [call_info, data]
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping):
        sources.append(metadata)
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        if str_or_none(source.get("model_id")):
            return str(source["model_id"])
        info = source.get("model_info")
        if isinstance(info, Mapping) and str_or_none(info.get("id")):
            return str(info["id"])
    return None


def model_group_of(data: Mapping[str, Any]) -> str | None:
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping) and str_or_none(metadata.get("model_group")):
        return str(metadata["model_group"])
    return str_or_none(data.get("model"))


def state_headers(signals: Iterable[TargetSignals]) -> dict[str, str]:
    """Headers for the worst of ``signals`` (one deployment, or every deployment of a group)."""
    ordered = sorted(signals, key=lambda s: (_SEVERITY.get(s.circuit_state, 2), -s.cooldown_remaining))
    if not ordered:
        return {}
    head = ordered[0]
    headers = {HEADER_CIRCUIT_STATE: head.circuit_state}
    if head.rate_remaining is not None:
        headers[HEADER_RATE_REMAINING] = str(max(0, math.floor(head.rate_remaining)))
    if head.max_inflight is not None:
        headers[HEADER_INFLIGHT_REMAINING] = str(max(0, head.max_inflight - head.current_inflight))
    if head.circuit_state == "open" and math.isfinite(head.cooldown_remaining):
        headers[HEADER_COOLDOWN_REMAINING] = retry_after_header(head.cooldown_remaining)
    return headers
