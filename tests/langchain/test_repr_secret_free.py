"""A ResilientChatModel's repr and str show no credential from a wrapped model's base URL, and name targets
without userinfo or query string."""

from __future__ import annotations

from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from langchain_ailib_resilience.integrations.langchain import ResilientChatModel

SECRET = "sk-proj-0123456789abcdef"


def test_wrapped_models_with_credentials_in_their_base_urls() -> None:
    model = ResilientChatModel(
        model=ChatOpenAI(model="gpt-4o", base_url=f"http://u:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}", api_key="x"),
        fallbacks=[
            ChatAnthropic(model="claude-3-5-haiku-latest", base_url=f"http://127.0.0.1:9?key={SECRET}", api_key="y")
        ],
    )
    assert [spec.name for spec in model._specs] == [
        "openai/gpt-4o@http://127.0.0.1:9/v1",
        "anthropic/claude-3-5-haiku-latest@http://127.0.0.1:9",
    ]
    assert SECRET not in repr(model)
    assert SECRET not in str(model)
    assert "127.0.0.1:9" in repr(model)
