"""Every ```python block of README.md runs, as written, against the provider emulator: the README cannot drift.

How a block is run (the rules for anyone adding one):

- **On its own**, in a fresh namespace with ``__name__ == "__main__"``, as if pasted into a new ``python``
  session: it imports and defines everything it uses. No top-level ``await``: wrap async code in
  ``asyncio.run(...)``. Blocks run in README order, but none may rely on another.
- **Against the emulator, through the usual environment variables.** One ``ProviderEmulator`` is started for the
  module and the well-known endpoint and key variables point at it (``OPENAI_BASE_URL``/``OPENAI_API_BASE``/
  ``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_URL``/``ANTHROPIC_API_BASE``/``ANTHROPIC_API_KEY``,
  ``GEMINI_API_BASE``/``GEMINI_API_KEY``), so ``ChatOpenAI(model="gpt-4o")``, ``ChatAnthropic(...)``,
  ``"openai/gpt-4o"`` and ``"anthropic:claude-sonnet-4-5"`` reach it with no code of the harness in the block.
  Every model answers with a success. A block that wants faults starts its own emulator
  (``with ProviderEmulator() as emu:``) and passes ``emu.openai_base`` / ``emu.anthropic_base`` itself.
- **Clean state:** the shared per-target registry is reset before each block, and LiteLLM's callback lists are
  restored after it. Each block has ``BLOCK_TIMEOUT`` seconds.
- **Opting out** is for blocks that need something the test machine cannot have (a real provider, a service):
  put ``<!-- readme: no-run REASON -->`` on the line just before the fence. The reason is required, and the
  opted-out blocks are listed by ``test_opted_out_blocks_say_why``.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from langchain_ailib_resilience import reset_registry
from langchain_ailib_resilience.testing import ProviderEmulator

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK_TIMEOUT = 60.0
_FENCE = re.compile(r"^```python\s*$")
_NO_RUN = re.compile(r"^<!--\s*readme:\s*no-run\b\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # the first line of code, 1-based
    code: str
    no_run: str | None  # the opt-out reason, if any


def readme_blocks(text: str) -> list[Block]:
    """The ```python blocks of ``text``, with where they start and any opt-out marker before them."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        start = index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md:{index + 1}: a ```python block is never closed")
        marker = _NO_RUN.match(lines[index - 1]) if index else None
        reason = marker.group("reason") if marker else None
        if marker and not reason:
            raise AssertionError(f"README.md:{index}: a no-run marker needs a reason")
        blocks.append(Block(start + 1, "\n".join(lines[start:end]) + "\n", reason))
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


class _BlockTimeout(BaseException):
    """A BaseException, so that no resilience layer inside the block takes it for a provider timeout."""


@pytest.fixture(scope="module")
def readme_emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emu:
        yield emu


@pytest.fixture
def readme_env(readme_emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> ProviderEmulator:
    emu = readme_emulator
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_BASE_URL": emu.openai_base,
        "OPENAI_API_BASE": emu.openai_base,
        "OPENAI_API_KEY": "sk-readme-test",
        "ANTHROPIC_BASE_URL": emu.anthropic_base,
        "ANTHROPIC_API_URL": emu.anthropic_base,
        "ANTHROPIC_API_BASE": emu.anthropic_base,
        "ANTHROPIC_API_KEY": "sk-ant-readme-test",
        "GEMINI_API_BASE": emu.gemini_base,
        "GEMINI_API_KEY": "readme-test",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith("AI_LIB_")]:
        monkeypatch.delenv(name)  # the README's config must not depend on the machine's
    return emu


def _litellm_callback_lists() -> dict[str, list[Any]]:
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is None:
        return {}
    names = ("callbacks", "success_callback", "failure_callback", "_async_success_callback", "_async_failure_callback")
    return {name: list(getattr(litellm, name)) for name in names if isinstance(getattr(litellm, name, None), list)}


def _restore_litellm(saved: dict[str, list[Any]]) -> None:
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is None:
        return
    for name in (
        "callbacks",
        "success_callback",
        "failure_callback",
        "_async_success_callback",
        "_async_failure_callback",
    ):
        current = getattr(litellm, name, None)
        if isinstance(current, list):
            current[:] = saved.get(name, [])


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _BlockTimeout(f"README block ran longer than {BLOCK_TIMEOUT}s")


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5, "the README's samples went missing"


def test_opted_out_blocks_say_why() -> None:
    for block in BLOCKS:
        if block.no_run is not None:
            assert len(block.no_run) >= 10, f"README.md:{block.line}: say why this block cannot run here"


def run_block(block: Block, timeout: float = BLOCK_TIMEOUT) -> None:
    """Run one block as the rules above say; whatever it raises (a failed ``assert`` in it too) propagates."""
    # Padded so tracebacks name the README's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")
    reset_registry()
    saved = _litellm_callback_lists()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(code, {"__name__": "__main__", "__file__": str(README)})
    except _BlockTimeout:
        pytest.fail(f"README.md:{block.line}: the block ran longer than {timeout}s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _restore_litellm(saved)
        reset_registry()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_block_runs(block: Block, readme_env: ProviderEmulator) -> None:
    """Fails by raising: the block's own asserts and errors, or its timeout (``test_a_broken_block_fails``)."""
    if block.no_run is not None:
        pytest.skip(f"README.md:{block.line} opted out: {block.no_run}")
    run_block(block)


def test_a_broken_block_fails() -> None:
    """The harness cannot pass a block that fails: a false assert, an error, or one that never ends."""
    with pytest.raises(AssertionError, match="README"):
        run_block(Block(3, "assert 1 == 2, 'README sample broke'\n", None))
    with pytest.raises(NameError):
        run_block(Block(3, "undefined_name\n", None))
    with pytest.raises(pytest.fail.Exception, match="ran longer"):
        run_block(Block(3, "import time\nwhile True:\n    time.sleep(0.01)\n", None), timeout=0.2)


def test_the_harness_finds_blocks_and_markers() -> None:
    text = "intro\n```python\nx = 1\n```\n<!-- readme: no-run needs a real Redis server -->\n```python\ny = 2\n```\n"
    first, second = readme_blocks(text)
    assert (first.line, first.code, first.no_run) == (3, "x = 1\n", None)
    assert (second.line, second.code, second.no_run) == (7, "y = 2\n", "needs a real Redis server")
    with pytest.raises(AssertionError, match="never closed"):
        readme_blocks("```python\nx = 1\n")
