"""docs/architecture.md cites real code: every `dotted.name` in backticks resolves, so the document cannot drift.

A name is resolved inside ``langchain_ailib_resilience`` (``core.CallCore``, ``ResilientChatModel.ainvoke``: the
longest importable module prefix, then attributes); a name whose first part is not in the package is imported
as written (``redis.asyncio``). Backticked text that is not a dotted identifier (code, paths, values) is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import langchain_ailib_resilience

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = langchain_ailib_resilience.__name__
_DOTTED = re.compile(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)`")


def cited_names(text: str) -> list[str]:
    return sorted(set(_DOTTED.findall(text)))


def resolve(name: str) -> object:
    """The object ``name`` cites (see the module docstring); raises if there is none."""
    parts = name.split(".")
    in_package = importlib.util.find_spec(f"{PACKAGE}.{parts[0]}") is not None or hasattr(
        langchain_ailib_resilience, parts[0]
    )
    base = f"{PACKAGE}." if in_package else ""
    for cut in range(len(parts), 0, -1):
        module_name = base + ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and not module_name.startswith(error.name):
                raise  # the module exists but an import inside it failed
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    if not in_package:
        raise ModuleNotFoundError(name)
    obj = langchain_ailib_resilience
    for attr in parts:
        obj = getattr(obj, attr)
    return obj


def test_the_document_cites_code() -> None:
    assert len(cited_names(DOC.read_text())) >= 40


@pytest.mark.parametrize("name", cited_names(DOC.read_text()))
def test_cited_name_exists(name: str) -> None:
    """Fails by raising: ``resolve`` raises for a name the code does not have (``test_a_wrong_name_fails``)."""
    resolve(name)


@pytest.mark.parametrize("name", ["core.CallCor", "registy.Registry", "executor.ResilientExecutor.exec"])
def test_a_wrong_name_fails(name: str) -> None:
    with pytest.raises((AttributeError, ModuleNotFoundError)):
        resolve(name)


def test_readme_links_the_document() -> None:
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()
