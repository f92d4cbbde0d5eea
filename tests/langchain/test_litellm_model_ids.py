"""LiteLLM model ids: built as ChatLiteLLM with every retry layer off, checked at construction, called offline."""

from __future__ import annotations

import pytest
from lc_helpers import FAST
from pydantic import ValidationError

from langchain_ailib_resilience import FakeClock, ResilientChatModel

pytestmark = pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier")
pytest.importorskip("litellm")
langchain_litellm = pytest.importorskip("langchain_litellm")

MOCK_429 = {"model_kwargs": {"mock_response": "litellm.RateLimitError"}}


def test_model_ids_become_chat_litellm_with_their_retries_off() -> None:
    model = ResilientChatModel(
        model="openai/gpt-4o",
        fallbacks=[{"model": "anthropic/claude-3-5-sonnet", "api_key": "sk-ant", "target": "claude"}],
        temperature=0.2,
        timeout=5,
        api_key="sk-test",
        litellm_kwargs={"api_base": "http://127.0.0.1:9/v1"},
    )
    # Named as the LiteLLM integration names the same call: provider/model@api_base (an explicit target wins).
    assert model.targets == ["openai/gpt-4o@http://127.0.0.1:9/v1", "claude"]
    params = model._get_ls_params()
    assert (params["ls_provider"], params["ls_model_name"]) == ("openai", "gpt-4o")
    openai_model, claude_model = (route.runnable for route in model._base_routes())
    assert isinstance(openai_model, langchain_litellm.ChatLiteLLM)
    assert openai_model.max_retries == 0
    assert openai_model.model_kwargs == {"max_retries": 0, "num_retries": 0}
    assert (openai_model.temperature, openai_model.request_timeout) == (0.2, 5)
    assert openai_model.api_base == "http://127.0.0.1:9/v1"
    assert claude_model.api_key == "sk-ant"  # a target's own settings win over the shared ones


def test_an_unknown_model_id_is_a_construction_error() -> None:
    with pytest.raises(ValidationError, match="fallbacks\\[0\\]: unknown LiteLLM model id 'foo/bar'"):
        ResilientChatModel(model="openai/gpt-4o", fallbacks=["foo/bar"])


async def test_calls_go_through_litellm_retry_then_fall_back(clock: FakeClock) -> None:
    model = ResilientChatModel(
        FAST,
        model={"model": "openai/gpt-4o", **MOCK_429},
        fallbacks=[{"model": "anthropic/claude-3-5-sonnet", "model_kwargs": {"mock_response": "from claude"}}],
        api_key="sk-test",
        clock=clock,
    )
    assert (await model.ainvoke("hi")).content == "from claude"
    assert clock.sleeps == [0.5, 1.0]  # the 429 retried twice on the primary, then the fallback answered
    chunks = [chunk.text async for chunk in model.astream("hi")]
    assert "".join(chunks) == "from claude"
    primary = model.signals_snapshot().targets["openai/gpt-4o"]
    assert (primary.circuit_state, primary.rejected_total) == ("open", 1)  # 3 failures opened it
