"""examples/litellm-proxy stays consistent: its config names its callback module, which builds a ResilienceCallback.

The proxy itself is driven in test_litellm_proxy.py with a config built the same way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from langchain_ailib_resilience import ResilienceCallback

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "litellm-proxy"


def test_example_config_registers_the_callback_module_beside_it() -> None:
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    callbacks = config["litellm_settings"]["callbacks"]
    assert callbacks == ["custom_callbacks.proxy_handler_instance"]
    module_name, attribute = callbacks[0].split(".")
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLE / f"{module_name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, attribute)
    assert isinstance(handler, ResilienceCallback)
    assert handler.config.circuit_breaker.quota_cooldown_seconds == 3600
    assert config["router_settings"]["disable_cooldowns"] is True
    assert "num_retries" not in config["litellm_settings"]
    assert config["general_settings"]["master_key"].startswith("os.environ/")  # never a key in the file
