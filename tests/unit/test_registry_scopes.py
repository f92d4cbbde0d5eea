"""Who owns a target's state: registry scopes, private state for unnamed calls, one name per target everywhere.

Each test is one surprise a new user met (issue 13), and fails on the code before registry scopes.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    FakeClock,
    FallbackChain,
    RateLimiterConfig,
    Registry,
    ResilienceError,
    ResilientChatModel,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    reset_registry,
    signals_snapshot,
)
from langchain_ailib_resilience.registry import TargetPolicyConflictError
from langchain_ailib_resilience.targets import target_key


def settings(threshold: int = 2, rps: float | None = None, **extra: Any) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=0),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=threshold, cooldown_seconds=30),
        rate_limiter=RateLimiterConfig(requests_per_second=rps),
        **extra,
    )


async def overloaded() -> str:
    raise ResilienceError("busy", code="E3001")


async def ok() -> str:
    return "ok"


async def open_circuit(executor: ResilientExecutor, **target: str) -> None:
    for _ in range(executor.config.circuit_breaker.failure_threshold):
        with pytest.raises(ResilienceError, match="busy"):
            await executor.execute(overloaded, **target)
    with pytest.raises(CircuitOpenError):
        await executor.execute(ok, **target)


# --- unnamed calls: private to their executor -------------------------------------------------------------


async def test_executors_without_a_target_name_do_not_share_a_breaker(clock: FakeClock) -> None:
    first = ResilientExecutor(settings(threshold=2), clock=clock)
    await open_circuit(first)
    second = ResilientExecutor(settings(threshold=50), clock=clock)
    assert await second.execute(ok) == "ok"  # was CircuitOpenError: both were the target "default"


async def test_a_fresh_executor_per_test_inherits_no_open_breaker(clock: FakeClock) -> None:
    await open_circuit(ResilientExecutor(settings(), clock=clock))
    assert await ResilientExecutor(settings(), clock=clock).execute(ok) == "ok"


async def test_a_fallback_chain_of_plain_callables_keeps_its_state_private(clock: FakeClock) -> None:
    async def primary() -> str:
        raise ResilienceError("busy", code="E3001")

    async def backup() -> str:
        return "backup"

    chain = FallbackChain([primary, backup], config=settings(threshold=1), clock=clock)
    assert await chain.arun() == "backup"
    other = ResilientExecutor(settings(threshold=9), clock=clock)
    assert await other.execute(ok, target="primary") == "ok"  # the function's name is not a shared target


# --- named targets: shared in a scope, one policy per target -------------------------------------------------


async def test_same_policy_same_target_shares_one_breaker(clock: FakeClock) -> None:
    await open_circuit(ResilientExecutor(settings(), clock=clock), target="openai/gpt-4o")
    with pytest.raises(CircuitOpenError):
        await ResilientExecutor(settings(), clock=clock).execute(ok, target="openai/gpt-4o")


async def test_a_different_target_policy_is_an_error_naming_target_and_fields(clock: FakeClock) -> None:
    await ResilientExecutor(settings(rps=1000), clock=clock).execute(ok, target="openai/gpt-4o")
    slow = ResilientExecutor(settings(rps=0.5), clock=clock)
    with pytest.raises(TargetPolicyConflictError) as info:
        await slow.execute(ok, target="openai/gpt-4o")  # was: silently limited at the first user's 1000/s
    message = str(info.value)
    assert "'openai/gpt-4o'" in message and "rate_limiter.requests_per_second: 1000.0 -> 0.5" in message
    assert info.value.differences == ["rate_limiter.requests_per_second: 1000.0 -> 0.5"]


async def test_a_different_clock_is_a_policy_difference(clock: FakeClock) -> None:
    await ResilientExecutor(settings(), clock=clock).execute(ok, target="openai/gpt-4o")
    with pytest.raises(TargetPolicyConflictError, match="clock: FakeClock .* -> SystemClock"):
        await ResilientExecutor(settings()).execute(ok, target="openai/gpt-4o")


async def test_the_call_policy_may_differ(clock: FakeClock) -> None:
    await ResilientExecutor(settings(), clock=clock).execute(ok, target="openai/gpt-4o")
    patient = settings().model_copy(update={"retry": RetryConfig(max_retries=5, budget=None), "total_timeout": 9})
    with pytest.raises(TargetPolicyConflictError, match=r"retry\.budget"):  # the budget is the target's
        await ResilientExecutor(patient, clock=clock).execute(ok, target="openai/gpt-4o")
    same_budget = settings().model_copy(update={"retry": settings().retry.model_copy(update={"max_retries": 5})})
    assert await ResilientExecutor(same_budget, clock=clock).execute(ok, target="openai/gpt-4o") == "ok"


async def test_separate_scopes_keep_different_policies_apart(clock: FakeClock) -> None:
    await open_circuit(ResilientExecutor(settings(), clock=clock), target="openai/gpt-4o")
    apart = ResilientExecutor(settings(threshold=9, rps=0.5), clock=clock, registry=Registry())
    assert await apart.execute(ok, target="openai/gpt-4o") == "ok"


async def test_state_url_differences_never_echo_the_url(clock: FakeClock) -> None:
    await ResilientExecutor(settings(), clock=clock).execute(ok, target="t/x")
    secret = settings(state_url="memory://user:hunter2@x")
    with pytest.raises(TargetPolicyConflictError) as info:
        await ResilientExecutor(secret, clock=clock).execute(ok, target="t/x")
    assert "hunter2" not in str(info.value) and "state_url differs" in str(info.value)


# --- reset_registry reaches every live user ------------------------------------------------------------------


async def test_reset_registry_reaches_an_executor_that_already_used_the_target(clock: FakeClock) -> None:
    executor = ResilientExecutor(settings(), clock=clock)
    await open_circuit(executor, target="openai/gpt-4o")
    reset_registry()
    assert await executor.execute(ok, target="openai/gpt-4o") == "ok"  # was CircuitOpenError: a cached state
    assert signals_snapshot("openai/gpt-4o").circuit_state == "closed"
    assert executor.signals_snapshot("openai/gpt-4o").consecutive_failures == 0


# --- chat models -----------------------------------------------------------------------------------------


def fake(*responses: str) -> FakeListChatModel:
    return FakeListChatModel(responses=list(responses))


def test_wrappers_of_two_unnamed_model_instances_do_not_share(clock: FakeClock) -> None:
    fast = ResilientChatModel(settings(rps=1000), model=fake("a"), clock=clock)
    slow = ResilientChatModel(settings(rps=0.5), model=fake("b"), clock=clock)
    assert fast.invoke("hi").content == "a"
    assert slow.invoke("hi").content == "b"  # no conflict, no silent sharing: each keeps its own state
    assert slow.executor.state(slow.targets[0]).limiter is not fast.executor.state(fast.targets[0]).limiter
    limiter = slow.executor.state(slow.targets[0]).limiter
    assert limiter is not None and limiter.rate == 0.5  # was the first model's 1000/s


def test_wrappers_naming_one_model_with_different_limits_fail_loudly(clock: FakeClock) -> None:
    first = ResilientChatModel(settings(rps=1000), model={"model": fake("a"), "target": "openai/gpt-4o"}, clock=clock)
    second = ResilientChatModel(settings(rps=0.5), model={"model": fake("b"), "target": "openai/gpt-4o"}, clock=clock)
    first.invoke("hi")
    with pytest.raises(TargetPolicyConflictError, match="requests_per_second"):
        second.invoke("hi")


# --- FallbackChain names targets like every other entry point ------------------------------------------------


def test_fallback_chain_names_a_bare_model_id_like_the_other_entry_points() -> None:
    chain = FallbackChain(["gpt-4o", "anthropic/claude-3-5-sonnet-20241022"])
    assert chain.names == ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]  # was "gpt-4o"
    assert chain.names[0] == target_key("gpt-4o") == ResilientChatModel(model="gpt-4o").targets[0]


def test_fallback_chain_accepts_the_readme_mapping_targets(clock: FakeClock) -> None:
    base = "http://127.0.0.1:8000/v1"
    chain = FallbackChain(
        [{"model": "openai/gpt-4o", "api_base": base, "api_key": "k"}, {"model": "gpt-4o", "target": "mine"}],
        config=settings(),
        clock=clock,
    )
    assert chain.names == [f"openai/gpt-4o@{base}", "mine"]
    seen: list[Any] = []
    assert chain.run(lambda target: seen.append(target) or "ok") == "ok"
    assert seen == [{"model": "openai/gpt-4o", "api_base": base, "api_key": "k"}]
    runnable = chain.as_runnable()  # was TypeError: target 'target0' is neither a Runnable...
    assert isinstance(runnable, ResilientChatModel)
    assert runnable.targets == chain.names


async def test_fallback_chain_shares_the_named_breaker_with_other_entry_points(clock: FakeClock) -> None:
    await open_circuit(ResilientExecutor(settings(), clock=clock), target="openai/gpt-4o")
    chain = FallbackChain(["gpt-4o", "anthropic/claude-3-5-sonnet-20241022"], config=settings(), clock=clock)
    tried: list[str] = []

    async def call(model: str) -> str:
        tried.append(model)
        return f"from {model}"

    assert await chain.arun(call) == "from anthropic/claude-3-5-sonnet-20241022"
    assert tried == ["anthropic/claude-3-5-sonnet-20241022"]  # the open circuit skipped gpt-4o at once
