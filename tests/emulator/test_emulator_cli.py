"""The ``ailib-resilience`` command: the emulator subcommand end to end, and the lazy demo subcommand."""

from __future__ import annotations

import signal
import subprocess
import sys
import types

import httpx
import pytest

from langchain_ailib_resilience import cli


def test_emulator_prints_base_urls_and_returns(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulator", "--port", "0", "--duration", "0", "--quiet", "--script", "m=429,ok"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out
    assert "/v1beta" in out and "Stopped after 0 request(s)." in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--script", "m=teapot"],
        ["--script", "*=ok"],
        ["--default", "no-equals-sign"],
        ["--rate-limit", "m=fast"],
        ["--fault-rate", "2"],
    ],
)
def test_emulator_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulator", "--duration", "0", *argv]) == 2
    assert "ailib-resilience emulator:" in capsys.readouterr().err


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_emulator_process_serves_scripts_until_interrupted() -> None:
    command = [sys.executable, "-m", "langchain_ailib_resilience.cli", "emulator", "--quiet"]
    command += ["--script", "openai/gpt-x=429:0.5,ok:scripted", "--default", "*=ok:default"]
    # Ctrl-C's default action, whatever this test inherited: a CI started as a background job runs with SIGINT
    # ignored, the emulator inherited that and never stopped (the communicate timeout below, 2 CI failures).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        assert process.stdout is not None
        base = process.stdout.readline().split()[-1]
        while "Ctrl-C" not in process.stdout.readline():
            pass
        url = f"{base}/v1/chat/completions"
        with httpx.Client(timeout=5) as client:
            first = client.post(url, json={"model": "gpt-x", "messages": []})
            second = client.post(url, json={"model": "gpt-x", "messages": []})
            other = client.post(url, json={"model": "other", "messages": []})
        assert (first.status_code, first.headers["retry-after"]) == (429, "0.5")
        assert second.json()["choices"][0]["message"]["content"] == "scripted"
        assert other.json()["choices"][0]["message"]["content"] == "default"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Stopped after 3 request(s)." in out


def test_demo_runs_the_demo_module(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        received.append(args)
        return 3

    monkeypatch.setitem(sys.modules, "langchain_ailib_resilience.demo", types.SimpleNamespace(main=fake_main))
    assert cli.main(["demo", "--fast", "x"]) == 3
    assert received == [["--fast", "x"]]


def test_demo_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    assert cli.main(["demo"]) == 2
    assert "demo is not available" in capsys.readouterr().err


def test_demo_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError("No module named 'rich'", name="rich")

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    assert cli.main(["demo"]) == 2
    assert "langchain-ailib-resilience[demo]" in capsys.readouterr().err
