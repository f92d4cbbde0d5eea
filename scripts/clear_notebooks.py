"""Clear the notebooks' outputs, execution counts and run metadata, so that they are stored clean.

    python scripts/clear_notebooks.py              # notebooks/*.ipynb, rewritten in place
    python scripts/clear_notebooks.py --check      # exit 1, naming the notebooks that are not clean
    python scripts/clear_notebooks.py a.ipynb ...  # just these

Needs ``nbformat`` (a dev dependency).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Per-cell metadata written by running or viewing a notebook (nbclient's timings, Jupyter's view state).
RUN_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


def clear(nb: nbformat.NotebookNode) -> None:
    """Drop outputs, execution counts and run metadata from ``nb``, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    language = nb.metadata.get("language_info")
    if isinstance(language, dict):
        language.pop("version", None)  # the Python version of whoever ran it last


def cleared_text(path: Path) -> tuple[str, str]:
    """The notebook's text as stored, and as it should be stored."""
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=nbformat.NO_CONVERT)
    clear(nb)
    after = nbformat.writes(nb)
    return before, after if after.endswith("\n") else after + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not clean")
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = []
    for path in paths:
        before, after = cleared_text(path)
        if before == after:
            continue
        dirty.append(path)
        if not args.check:
            path.write_text(after, encoding="utf-8")
    verb = "not clean" if args.check else "cleared"
    for path in dirty:
        print(f"{verb}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
