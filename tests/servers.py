"""Threaded loopback HTTP servers for tests: start, yield, always shut down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
