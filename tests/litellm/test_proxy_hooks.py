"""The callback's proxy-server hooks called directly: refusals become 429/503 with Retry-After, state headers.

The real proxy process is driven in ``tests/proxy``.
"""

from __future__ import annotations

import litellm
import pytest
from fastapi import HTTPException

from langchain_ailib_resilience import (
    BackpressureError,
    CircuitOpenError,
    RateLimitExceededError,
    ResilienceCallback,
    ResilienceError,
    StandardErrorCode,
)
from langchain_ailib_resilience.integrations.litellm import _proxy


async def _failure(callback: ResilienceCallback, exc: Exception) -> object:
    return await callback.async_post_call_failure_hook({}, exc, None)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (CircuitOpenError("open", target="t", retry_after=12.2), 503, "13"),
        (BackpressureError("full"), 503, "1"),
        (RateLimitExceededError("slow down", retry_after=0.01), 429, "1"),
    ],
)
async def test_local_refusals_become_http_exceptions(error: ResilienceError, status: int, retry_after: str) -> None:
    assert error.local
    answer = await _failure(ResilienceCallback({}), error)
    assert isinstance(answer, HTTPException)
    assert answer.status_code == status
    assert answer.headers is not None
    assert answer.headers["retry-after"] == retry_after
    assert answer.headers[_proxy.HEADER_CODE] == error.code.value
    assert "'t'" not in str(answer.detail)  # no target name (it holds the endpoint) in the client's message


async def test_wrapped_refusal_is_found_and_provider_errors_are_left_alone() -> None:
    callback = ResilienceCallback({})
    refusal = CircuitOpenError("open", target="t", retry_after=3)
    wrapper = RuntimeError("router gave up")
    wrapper.__cause__ = refusal
    answer = await _failure(callback, wrapper)
    assert isinstance(answer, HTTPException) and answer.status_code == 503
    provider = litellm.RateLimitError(message="429", model="x", llm_provider="openai")
    assert await _failure(callback, provider) is None
    non_local = ResilienceError("provider said 503", code=StandardErrorCode.OVERLOADED)
    assert await _failure(callback, non_local) is None


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert _proxy.retry_after_header(None) == "1"
    assert _proxy.retry_after_header(0.0) == "1"
    assert _proxy.retry_after_header(1.0) == "1"
    assert _proxy.retry_after_header(1.01) == "2"
    assert _proxy.retry_after_header(float("inf")) == "1"


async def test_headers_name_the_deployment_that_served() -> None:
    callback = ResilienceCallback(
        {"rate_limiter": {"requests_per_second": 10, "burst_size": 4}, "backpressure": {"max_inflight": 3}}
    )
    kwargs = {
        "model": "openai/gpt-x",
        "litellm_call_id": "call-1",
        "api_base": "http://127.0.0.1:9/v1",
        "metadata": {"model_group": "gpt", "model_info": {"id": "dep-a"}},
    }
    await callback.async_pre_call_deployment_hook(kwargs, None)
    headers = await callback.async_post_call_response_headers_hook(
        {"model": "gpt", "metadata": {"model_group": "gpt"}}, None, None, litellm_call_info={"model_id": "dep-a"}
    )
    assert headers == {
        _proxy.HEADER_CIRCUIT_STATE: "closed",
        _proxy.HEADER_RATE_REMAINING: "3",
        _proxy.HEADER_INFLIGHT_REMAINING: "2",
    }
    await callback.async_post_call_success_deployment_hook(kwargs, None, None)
    # Unknown deployment: the group's worst; unknown group: nothing.
    assert (await callback.async_post_call_response_headers_hook({"model": "gpt"}, None, None))[
        _proxy.HEADER_INFLIGHT_REMAINING
    ] == "3"
    assert await callback.async_post_call_response_headers_hook({"model": "other"}, None, None) is None


def test_subclasses_keep_the_proxy_hooks_in_their_own_class() -> None:
    class Mine(ResilienceCallback):
        pass

    # The proxy checks the callback class's own __dict__ for these hooks.
    assert "async_post_call_failure_hook" in vars(Mine)
    assert "async_post_call_response_headers_hook" in vars(Mine)
