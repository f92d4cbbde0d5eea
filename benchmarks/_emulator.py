"""Run the ``ProviderEmulator`` in a child process, driven by JSON lines over its stdin/stdout.

The emulator is a threaded HTTP server; in the benchmark's own process it would compete for the GIL with the
asyncio clients being measured. A child process keeps the provider's timing independent of the client's load.
Methods are forwarded by name (``emu.call("rate_limit", "m", 20, 1)``); behaviours travel as the emulator's own
text specs (``Spec("503")``, ``Spec("hang:5")``), parsed in the child by ``parse_behaviour``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from types import TracebackType
from typing import Any, NamedTuple, Self


class Spec(NamedTuple):
    """A behaviour as a text spec, e.g. ``Spec("503")``; a list of them scripts several requests."""

    text: str


def _decode(value: Any) -> Any:
    from langchain_ailib_resilience.testing.emulator import parse_behaviour

    if isinstance(value, dict) and set(value) == {"spec"}:
        return parse_behaviour(value["spec"])
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, Spec):
        return {"spec": value.text}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _summary(emulator: Any, model: str | None = None) -> dict[str, int]:
    """Requests per HTTP status (``"none"`` for hang/reset), for ``model`` or all."""
    counts: Counter[str] = Counter()
    for record in emulator.requests:
        if model is None or record.model == model:
            counts[str(record.status) if record.status is not None else "none"] += 1
    return dict(counts)


def _serve() -> None:
    from langchain_ailib_resilience.testing.emulator import ProviderEmulator

    emulator = ProviderEmulator().start()
    out = sys.stdout
    out.write(json.dumps({"port": emulator.port}) + "\n")
    out.flush()
    try:
        for line in sys.stdin:
            message = json.loads(line)
            name, args, kwargs = message["m"], _decode(message.get("a", [])), message.get("k", {})
            try:
                if name == "summary":
                    result: Any = _summary(emulator, *args)
                elif name == "timestamps":
                    result = [r.timestamp for r in emulator.requests if not args or r.model == args[0]]
                elif name == "records":  # (arrival, status, tokens counted, the body's "user") per request
                    result = [
                        [r.timestamp, r.status, r.tokens, r.body.get("user")]
                        for r in emulator.requests
                        if not args or r.model == args[0]
                    ]
                else:
                    result = getattr(emulator, name)(*args, **{k: _decode(v) for k, v in kwargs.items()})
                reply = {"ok": result}
            except Exception as exc:
                reply = {"error": repr(exc)}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        emulator.stop()


class RemoteEmulator:
    """``ProviderEmulator`` in a child process; use as a context manager."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> Self:
        """Spawn the child without waiting for it (its imports overlap with the parent's)."""
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._emulator"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self

    def __enter__(self) -> Self:
        self.start()
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        self.port = int(json.loads(line)["port"])
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        self._process = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.base_url}/v1"

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        message = {"m": name, "a": _encode(list(args)), "k": {k: _encode(v) for k, v in kwargs.items()}}
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        reply = json.loads(process.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"emulator.{name} failed: {reply['error']}")
        return reply["ok"]

    def summary(self, model: str | None = None) -> dict[str, int]:
        result: dict[str, int] = self.call("summary", *([model] if model else []))
        return result


if __name__ == "__main__":
    _serve()
