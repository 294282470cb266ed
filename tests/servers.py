"""Threaded loopback HTTP servers for tests: start, yield, always shut down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from typing import TypeVar

S = TypeVar("S", bound=BaseServer)


def serve_in_thread(server: S) -> Iterator[S]:
    """Generator for pytest fixtures: `yield from serve_in_thread(MyServer())`."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class RecordingServer(ThreadingHTTPServer):
    """A loopback HTTP server that records every accepted connection (tests assert "never connected")."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections: list[tuple[str, int]] = []

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        self.connections.append(addr)
        return sock, addr

    def reset(self) -> None:
        self.connections.clear()
