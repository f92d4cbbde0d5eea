"""Routing inside LangChain: normalised errors drive with_fallbacks; FallbackChain.as_runnable; RateLimiter."""

from __future__ import annotations

import itertools

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from lc_helpers import FAST, bad_request, overloaded, quota, resilient, scripted, server_error

from langchain_ailib_resilience import (
    FakeClock,
    FallbackableError,
    FallbackChain,
    InvalidRequestError,
    RateLimiter,
    ResilienceEvent,
    ResilientChatModel,
)
from langchain_ailib_resilience.integrations.langchain import ResilientRunnable


def test_langchain_with_fallbacks_on_overload_and_open_circuit(clock: FakeClock) -> None:
    primary = scripted(overloaded(), cycle=True)
    backup = scripted("from langchain's fallback", name="backup", cycle=True)
    chained = resilient(primary, clock=clock).with_fallbacks([backup], exceptions_to_handle=(FallbackableError,))
    assert chained.invoke("hi").content == "from langchain's fallback"  # OverloadedError after retries
    assert len(primary.calls) == 3
    assert chained.invoke("hi").content == "from langchain's fallback"  # CircuitOpenError, nothing sent
    assert len(primary.calls) == 3
    assert len(backup.calls) == 2


def test_langchain_with_fallbacks_does_not_catch_a_bad_request(clock: FakeClock) -> None:
    backup = scripted("unused", name="backup")
    chained = resilient(scripted(bad_request()), clock=clock).with_fallbacks(
        [backup], exceptions_to_handle=(FallbackableError,)
    )
    with pytest.raises(InvalidRequestError):
        chained.invoke("hi")
    assert backup.calls == []


def test_fallback_chain_as_runnable_is_a_resilient_chat_model(clock: FakeClock) -> None:
    primary, backup = scripted(quota()), scripted("from backup", name="backup")
    chain = FallbackChain([primary, backup], clock=clock)
    events: list[ResilienceEvent] = []
    chain.executor.add_listener(events.append)
    runnable = chain.as_runnable()
    assert isinstance(runnable, ResilientChatModel)
    assert runnable.targets == chain.names
    assert runnable.invoke("hi").content == "from backup"
    assert [event.kind for event in events] == ["give_up", "fallback"]  # the chain's own listeners see it
    assert chain.signals_snapshot().targets.keys() == set(chain.names)


async def test_fallback_chain_as_runnable_with_its_own_config(clock: FakeClock) -> None:
    primary = scripted(server_error(), server_error(), "third")
    chain = FallbackChain([primary], clock=clock)
    no_retries = FAST.retry.model_copy(update={"max_retries": 0})  # same target policy (budget), other call policy
    runnable = chain.as_runnable(config=FAST.model_copy(update={"retry": no_retries}))
    with pytest.raises(FallbackableError):
        await runnable.ainvoke("hi")
    assert len(primary.calls) == 1
    retrying = chain.as_runnable(config=FAST)
    assert (await retrying.ainvoke("hi")).content == "third"


def test_fallback_chain_of_runnables_and_callables(clock: FakeClock) -> None:
    def broken(text: str) -> str:
        raise server_error()

    chain = FallbackChain([("broken", RunnableLambda(broken)), ("upper", str.upper)], config=FAST, clock=clock)
    runnable = chain.as_runnable()
    assert isinstance(runnable, ResilientRunnable)
    assert runnable.invoke("hi") == "HI"
    assert list(runnable.stream("ho")) == ["HO"]
    assert runnable.signals_snapshot().targets["broken"].consecutive_failures == 3


def test_our_rate_limiter_plugs_into_any_chat_model(clock: FakeClock) -> None:
    limiter = RateLimiter(requests_per_second=2, burst_size=1, clock=clock)
    model = GenericFakeChatModel(messages=itertools.cycle([AIMessage("hi")]), rate_limiter=limiter)
    for _ in range(3):
        model.invoke("hello")
    assert clock.sleeps == [0.5, 0.5]
    assert limiter.granted_total == 3
