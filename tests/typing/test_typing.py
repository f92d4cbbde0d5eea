"""``mypy --strict`` (no pydantic plugin) accepts the public API as users write it and rejects its misuses.

One mypy run over ``api.py`` and a generated file of misuses, with a cache under ``.mypy_cache``, so it costs
seconds after the first run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

# Each misuse a user could write, and the mypy error code it must produce (no `# type: ignore` anywhere).
MISUSES = {
    "ResilientConfig(retyr=RetryConfig(max_retries=3))": "call-arg",
    "RetryConfig(max_retries='3')": "arg-type",
    "CircuitBreakerConfig(failure_treshold=3)": "call-arg",
    "RateLimiterConfig(requests_per_second='10')": "arg-type",
    "ResilientExecutor(config=ResilientConfig(), clok=FakeClock())": "call-arg",
    "FallbackChain(['openai/gpt-4o'], confg=ResilientConfig())": "call-arg",
    "ResilienceMiddleware(fallback=['openai/gpt-4o'])": "call-arg",
    "ResilientChatModel(modle='openai/gpt-4o')": "call-arg",
    "ResilientChatModel(fallbacks=['openai/gpt-4o'])": "call-arg",
    "ResilientChatModel(model='openai/gpt-4o', temprature=0.2)": "call-arg",
    "ResilientChatModel(model='openai/gpt-4o', max_tokens='100')": "arg-type",
}

HEADER = """\
from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    FakeClock,
    FallbackChain,
    RateLimiterConfig,
    ResilienceMiddleware,
    ResilientChatModel,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
)
"""


def test_public_api_types_as_users_write_it(tmp_path: Path) -> None:
    misuses = tmp_path / "misuses.py"
    lines = list(MISUSES)
    misuses.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    first = HEADER.count("\n") + 2
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(HERE / "mypy.ini"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "typing-tests"),
            "--show-error-codes",
            "--no-pretty",
            "--no-error-summary",
            str(HERE / "api.py"),
            str(misuses),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line for line in errors if "api.py" in line] == [], result.stdout
    found: dict[int, set[str]] = {}
    for line in errors:
        match = re.match(r".*misuses\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        if match:
            found.setdefault(int(match[1]), set()).add(match[2])
    missed = [
        (source, code)
        for offset, (source, code) in enumerate(MISUSES.items())
        if code not in found.get(first + offset, set())
    ]
    assert missed == [], result.stdout
