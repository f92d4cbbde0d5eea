"""A small OpenAI chat-completions server on 127.0.0.1 with scripted faults, for LiteLLM integration tests.

Each request's ``model`` picks a script: a queue of replies used in order, then a default reply. Replies are
JSON answers, SSE streams (optionally failing after some chunks), or HTTP errors with headers (429 +
Retry-After, quota 429, 503). Every request is recorded so tests can assert what reached the "provider".
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Reply:
    kind: str  # "json" | "sse" | "error"
    text: str = "hello"
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: tuple[str, ...] = ()
    fail_after: int | None = None  # SSE: drop the connection after this many chunks
    delay: float = 0.0


def ok(text: str = "hello", *, delay: float = 0.0) -> Reply:
    return Reply("json", text=text, delay=delay)


def sse(*chunks: str, fail_after: int | None = None) -> Reply:
    return Reply("sse", chunks=chunks or ("hel", "lo"), fail_after=fail_after)


def error(status: int, message: str, *, type_: str = "server_error", code: str | None = None, **headers: str) -> Reply:
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return Reply("error", status=status, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def rate_limited(retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"retry_after": f"{retry_after:g}"}
    return error(429, "Rate limit reached for requests", type_="requests", code="rate_limit_exceeded", **headers)


def quota() -> Reply:
    return error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        type_="insufficient_quota",
        code="insufficient_quota",
    )


def unavailable() -> Reply:
    return error(503, "The server is overloaded or not ready yet.", type_="server_error")


@dataclass(frozen=True)
class Seen:
    model: str
    path: str
    stream: bool
    at: float


class FixtureServer:
    """``with FixtureServer() as server:`` → ``server.api_base`` is ``http://127.0.0.1:PORT/v1``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                model = str(payload.get("model", ""))
                stream = bool(payload.get("stream"))
                reply = server._next(model, self.path, stream)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.kind == "error":
                    self._send_json(reply.status, reply.body or {}, reply.headers)
                elif reply.kind == "sse" or stream:
                    self._send_sse(model, reply)
                else:
                    self._send_json(200, _completion(model, reply.text), reply.headers)

            def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_sse(self, model: str, reply: Reply) -> None:
                chunks = reply.chunks or (reply.text,)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for index, text in enumerate(chunks):
                        if reply.fail_after is not None and index >= reply.fail_after:
                            self.wfile.write(b"data: {broken json\n\n")
                            self.wfile.flush()
                            return
                        self._event(_chunk(model, text, None))
                    self._event(_chunk(model, "", "stop"))
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _event(self, data: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # --- scripting ----------------------------------------------------------------------------------------

    def script(self, model: str, *replies: Reply) -> FixtureServer:
        """Queue ``replies`` for ``model``, used in order before its default."""
        with self._lock:
            self._scripts[model].extend(replies)
        return self

    def default(self, model: str, reply: Reply) -> FixtureServer:
        with self._lock:
            self._defaults[model] = reply
        return self

    def _next(self, model: str, path: str, stream: bool) -> Reply:
        with self._lock:
            self.requests.append(Seen(model, path, stream, time.monotonic()))
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._defaults.get(model, ok())

    def reset(self) -> None:
        """Forget scripts, defaults and recorded requests (the server is shared by a session's tests)."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self.requests.clear()

    def count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if model is None or seen.model == model)

    # --- lifecycle ----------------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fixture",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _chunk(model: str, text: str, finish: str | None) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": text} if text else {}
    return {
        "id": "chatcmpl-fixture",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``predicate`` (for outcomes LiteLLM reports from a background thread or task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


async def aeventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()
