"""The HTTP side: a threading server on 127.0.0.1 whose handler hands each POST to the emulator."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._emulator import ProviderEmulator


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a soak opens 100+ connections at once; the default backlog of 5 refuses some

    def __init__(self, address: tuple[str, int], emulator: ProviderEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, EmulatorHandler)

    def close_connections(self) -> None:
        """Wake handlers blocked on idle keep-alive connections so they end with the server."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.emulator.verbose:
            return  # clients that time out or disconnect are part of the job, not errors worth a traceback
        super().handle_error(request, client_address)


class EmulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    # Called just before the bytes that let the client finish (the body, the last chunk, the close), so the
    # in-flight count never includes a request its client has already seen end: peaks are a lower bound of the
    # client's own concurrency, never above it.
    finishing: Callable[[], None] | None = None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle plus the client's delayed ACK
        # adds ~40 ms to every answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if urlsplit(self.path).path in ("/", "/health"):
            send(self, 200, {"content-type": "application/json"}, b'{"status": "ok"}')
        else:
            send_not_found(self)

    def do_POST(self) -> None:
        self.server.emulator._handle(self)


def finishing(handler: BaseHTTPRequestHandler) -> None:
    release = getattr(handler, "finishing", None)
    if release is not None:
        release()


def send(handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    finishing(handler)  # headers are buffered until end_headers: nothing has reached the client yet
    handler.end_headers()
    handler.wfile.write(body)


def send_not_found(handler: BaseHTTPRequestHandler) -> None:
    body = {"error": {"message": f"Unknown route {handler.path}", "type": "invalid_request_error", "param": None}}
    send(handler, 404, {"content-type": "application/json"}, json.dumps(body).encode())


def drop(handler: BaseHTTPRequestHandler, *, reset: bool) -> None:
    """End the connection without (the rest of) an answer: RST if ``reset``, otherwise a plain close."""
    handler.close_connection = True
    connection = handler.connection
    finishing(handler)
    with contextlib.suppress(OSError):
        if reset:
            # Linger 0 turns the close into an RST: the client sees "connection reset by peer".
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
        else:
            connection.shutdown(socket.SHUT_RDWR)
