"""The notebooks run top to bottom against the provider emulator, and are stored without outputs.

Each notebook runs in a fresh kernel on this interpreter: the test writes a kernelspec for ``sys.executable``
into a temporary directory at the front of ``JUPYTER_PATH``, so whatever kernels the machine has installed do
not matter. The notebooks assert what they show, so a behaviour change fails the cell that shows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_quickstart.ipynb",
    "02_breaker_and_fallback.ipynb",
    "03_litellm.ipynb",
    "04_tuning.ipynb",
    "05_agents.ipynb",
    "06_observability.ipynb",
]
KERNEL_NAME = "ailib-resilience-notebooks"
CELL_TIMEOUT = 120  # seconds; importing LiteLLM alone takes ~10 s on a busy machine
BUDGET = 60  # seconds per notebook: they take 15-30 s; this catches a runaway wait, not a slow machine


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this interpreter, found first; the kernel gets Agg and this checkout on its path."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv(
        "JUPYTER_PATH", os.pathsep.join(filter(None, [str(tmp_path / "jupyter"), os.environ.get("JUPYTER_PATH")]))
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")  # never a GUI window, even if a notebook forgot %matplotlib inline
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    return KERNEL_NAME


def test_the_notebooks_are_there() -> None:
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, kernel: str) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    started = time.monotonic()
    client.execute()  # raises CellExecutionError, naming the cell and its traceback, if any cell fails
    elapsed = time.monotonic() - started

    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    stderr = "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.get("name") == "stderr"
    )
    assert "Traceback" not in stderr, stderr
    assert elapsed < BUDGET, f"{path.name} took {elapsed:.1f}s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_stored_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for index, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {index} has outputs: run scripts/clear_notebooks.py"
        assert cell.execution_count is None, f"code cell {index} has an execution count"
        assert "execution" not in cell.metadata, f"code cell {index} has run timings"
    # LiteLLM downloads its model cost map at import unless told not to: the first code cell must say so first.
    first = code[0].source
    assert 'os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"' in first
    setting = first.index("LITELLM_LOCAL_MODEL_COST_MAP")
    assert "import litellm" not in first[:setting]
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_clear_script_clears_outputs(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    cell = next(cell for cell in nb.cells if cell.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.busy": "2025-01-01T00:00:00Z"}
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(nb, dirty)
    script = [sys.executable, str(ROOT / "scripts" / "clear_notebooks.py")]

    check = subprocess.run([*script, "--check", str(dirty)], capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "not clean" in check.stdout
    subprocess.run([*script, str(dirty)], check=True, capture_output=True)
    assert subprocess.run([*script, "--check", str(dirty)], check=False).returncode == 0

    cleaned = nbformat.read(dirty, as_version=4)
    cleaned_cell = next(cell for cell in cleaned.cells if cell.cell_type == "code")
    assert (cleaned_cell.outputs, cleaned_cell.execution_count) == ([], None)
    assert "execution" not in cleaned_cell.metadata
