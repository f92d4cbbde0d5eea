"""``make demo`` end to end: the four-act scenario on the emulator checks its own claims and exits 0."""

from __future__ import annotations

import pytest

from langchain_ailib_resilience import demo


@pytest.mark.slow
def test_demo_behaves_as_described(capsys: pytest.CaptureFixture[str]) -> None:
    status = demo.main(["--plain"])
    output = capsys.readouterr().out
    assert status == 0, output
    assert "scenario behaved as described" in output
    assert "FAIL" not in output
