"""Construction: the config positionally or by name, standard parameters, and clear errors."""

from __future__ import annotations

import itertools

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from lc_helpers import FAST, scripted
from pydantic import ValidationError

from langchain_ailib_resilience import (
    BackpressureConfig,
    ConfigError,
    ResilientChatModel,
    ResilientConfig,
    RetryConfig,
)


def fake() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=itertools.cycle([AIMessage("hi")]))


def test_config_positionally_first_or_by_name() -> None:
    assert ResilientChatModel(FAST, model=fake()).config is FAST
    assert ResilientChatModel(model=fake(), config=FAST).config is FAST
    with pytest.raises(TypeError, match="both positionally and as config="):
        ResilientChatModel(FAST, model=fake(), config=FAST)


def test_default_config_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_LIB_MAX_INFLIGHT", "7")
    assert ResilientChatModel(model=fake()).config.backpressure.max_inflight == 7
    assert ResilientChatModel(model=fake(), config=None).config.backpressure.max_inflight == 7
    monkeypatch.setenv("AI_LIB_MAX_INFLIGHT", "lots")
    with pytest.raises(ConfigError, match="AI_LIB_MAX_INFLIGHT"):
        ResilientChatModel(model=fake())


def test_a_config_dict_is_validated_and_anything_else_is_refused() -> None:
    model = ResilientChatModel({"backpressure": {"max_inflight": 3}}, model=fake())  # type: ignore[arg-type]
    assert model.config.backpressure == BackpressureConfig(max_inflight=3)
    with pytest.raises(ValidationError, match="max_inflight"):
        ResilientChatModel(model=fake(), config={"backpressure": {"max_inflight": 0}})
    with pytest.raises(TypeError, match="config must be a ResilientConfig"):
        ResilientChatModel(model=fake(), config="fast")


def test_an_object_that_is_not_a_chat_model_is_refused() -> None:
    with pytest.raises(TypeError, match=r"model must be a LangChain chat model .*RunnableLambda.*not a chat model"):
        ResilientChatModel(model=RunnableLambda(lambda x: x))
    with pytest.raises(TypeError, match=r"fallbacks\[1\] must be a LangChain chat model.*int"):
        ResilientChatModel(model=fake(), fallbacks=[fake(), 42])
    with pytest.raises(TypeError, match="fallbacks must be a list"):
        ResilientChatModel(model=fake(), fallbacks="openai/gpt-4o")
    with pytest.raises(TypeError, match="needs model="):
        ResilientChatModel()


@pytest.mark.parametrize("model_id", ["", "   ", "openai/gpt 4o"])
def test_a_blank_or_malformed_model_id_is_refused_without_importing_litellm(model_id: str) -> None:
    with pytest.raises(ValidationError, match="is not a LiteLLM model id"):
        ResilientChatModel(model=model_id)


def test_unknown_keyword_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['api_base'\].*litellm_kwargs"):
        ResilientChatModel(model=fake(), api_base="http://localhost")


def test_standard_parameters_are_accepted_and_max_retries_sets_the_retry_count() -> None:
    model = ResilientChatModel(
        FAST,
        model=fake(),
        temperature=0,
        max_tokens=100,
        timeout=60,
        stop=[],
        max_retries=5,
        api_key="test",
        streaming=True,
    )
    assert model.config.retry.max_retries == 5
    assert model.config.retry.initial_delay == FAST.retry.initial_delay
    assert model.api_key is not None and model.api_key.get_secret_value() == "test"
    with pytest.raises(ValidationError):
        ResilientChatModel(model=fake(), max_retries=-1)


def test_target_names_come_from_the_models_and_stay_distinct() -> None:
    model = ResilientChatModel(
        model=scripted("a", name="gpt"),
        fallbacks=[scripted("b", name="gpt"), fake(), {"model": fake(), "target": "backup-fake"}],
    )
    assert model.targets == ["test/gpt", "test/gpt#2", "genericfakechatmodel", "backup-fake"]
    with pytest.raises(ValueError, match="only apply to LiteLLM model ids"):
        ResilientChatModel(model={"model": fake(), "api_base": "http://x"})
    with pytest.raises(ValueError, match="needs a 'model' key"):
        ResilientChatModel(model={"target": "x"})


def test_langsmith_params_describe_the_primary() -> None:
    model = ResilientChatModel(model=scripted("a", name="gpt"), temperature=0.5, max_tokens=10, stop=["x"])
    params = model._get_ls_params()
    assert params == {
        "ls_provider": "test",
        "ls_model_name": "gpt",
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_max_tokens": 10,
        "ls_stop": ["x"],
    }
    assert model._get_ls_params(model="other")["ls_model_name"] == "other"


def test_config_without_retries_preset_is_kept() -> None:
    config = ResilientConfig(retry=RetryConfig(max_retries=0))
    assert ResilientChatModel(config, model=fake()).config.retry.max_retries == 0


def test_profile_is_the_primarys() -> None:
    primary = scripted("a", profile={"tool_calling": True, "max_input_tokens": 1000})
    assert ResilientChatModel(model=primary).profile == {"tool_calling": True, "max_input_tokens": 1000}
    assert ResilientChatModel(model={"model": primary, "target": "p"}).profile == primary.profile
    assert ResilientChatModel(model=fake()).profile is None
