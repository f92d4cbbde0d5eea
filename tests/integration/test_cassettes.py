"""Replay the recorded cassettes (record mode ``none``, no emulator running) and check the same outcomes.

The scenarios and the VCR settings come from ``scripts/record_cassettes.py``, which recorded them; re-record
with ``.venv/bin/python scripts/record_cassettes.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("litellm")
pytest.importorskip("vcr")

from langchain_ailib_resilience.errors.classify import classify_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _load_recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_cassettes", ROOT / "scripts" / "record_cassettes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is being built
    spec.loader.exec_module(module)
    return module


recorder = _load_recorder()
SCENARIOS = recorder.SCENARIOS
CASSETTE_FILES = sorted(recorder.CASSETTES.glob("*.yaml"))


def test_every_scenario_has_a_cassette_and_no_strays() -> None:
    assert {path.stem for path in CASSETTE_FILES} == {scenario.name for scenario in SCENARIOS}


def test_every_provider_format_and_fault_is_covered() -> None:
    covered = {(s.provider, s.name.split("_", 1)[1]) for s in SCENARIOS if s.client == "litellm"}
    for provider in ("openai", "anthropic", "gemini"):
        for case in ("success", "stream", "rate_limit", "overloaded", "quota"):
            assert (provider, case) in covered


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda path: path.stem)
def test_cassettes_hold_no_credentials(path: Path) -> None:
    text = path.read_text()
    for secret in ("test-key", "Bearer", "x-api-key", "x-goog-api-key", "authorization"):
        assert secret not in text, f"{secret!r} found in {path.name}"
    assert "127.0.0.1" not in text  # ports are normalised, so a replay works with any api_base


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_replay_gives_the_recorded_outcome(scenario) -> None:
    with recorder.make_vcr("none").use_cassette(f"{scenario.name}.yaml") as cassette:
        outcomes, errors = recorder.run_scenario(scenario, recorder.REPLAY_BASE_URL)
        assert cassette.play_count == 2
        assert cassette.all_played
    assert outcomes == [scenario.expected, scenario.expected]  # sync (httpx) and async (aiohttp) alike
    if scenario.code is not None:
        assert [classify_error(error).code.value for error in errors] == [scenario.code] * 2
        if scenario.expected.retry_after is not None:
            assert {classify_error(error).retry_after for error in errors} == {0.5}
