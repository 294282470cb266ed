"""Pure-ASGI middleware: request id, timing header, metrics, access log, body cap, back-pressure.

Written as raw ASGI (not BaseHTTPMiddleware) so it adds microseconds, streams nothing twice,
and can refuse an oversized or excess request before the body is even read.

Client disconnects: uvicorn never cancels an app on its own; it only answers `http.disconnect`
to the next `receive()`, which a plain (non-streaming) route never calls once it has the body.
So for the inference routes (`RouteSet.limited`) the app runs as a child task, and once the body is read a watcher
waits on `receive()`: a disconnect before the response starts cancels the child, which cancels
its awaits (the Triton gRPC call is cancelled, queued decode work is dropped) and frees its
in-flight slot. Logged and counted as status 499 (nginx's "client closed request").
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import KW_ONLY, dataclass
from typing import Any, Awaitable, Callable, MutableMapping

from gateway import logs
from gateway.errors import GatewayError, Overloaded, PayloadTooLarge, error_response
from gateway.metrics import Metrics
from starlette.exceptions import HTTPException as StarletteHTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("gateway.access")
_CLIENT_CLOSED = 499
# Echoed in a header and written to logs: only a conservative token, else a fresh id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_WANTED_HEADERS = {b"x-request-id", b"content-length"}


@dataclass(frozen=True)
class RouteSet:
    """The app's paths, read from its routers by create_app (declared once, there).

    `known` are metric labels (any other path is "other": bounded label values); `limited` are the
    inference routes: in-flight limit and cancellation on client disconnect.
    """

    known: frozenset[str]
    limited: frozenset[str]


def _body_too_large(limit: int) -> StarletteHTTPException:
    # An HTTPException raised inside receive() passes through FastAPI's body parsing unchanged.
    return StarletteHTTPException(413, f"Request body is larger than {limit} bytes.")


@dataclass(eq=False)
class GatewayMiddleware:
    """Wraps the whole app (`app.add_middleware(GatewayMiddleware, metrics=..., ...)`); one per worker process."""

    app: ASGIApp
    _: KW_ONLY
    metrics: Metrics
    max_body_bytes: int
    max_inflight: int
    routes: RouteSet
    inflight: int = 0  # requests of the limited routes being served now

    def __post_init__(self) -> None:
        self._ids = random.Random()  # request ids need uniqueness, not secrecy: no urandom syscall per request
        # Labelled metric children, looked up once: `labels()` takes a lock and builds a key per call.
        self._counters: dict[tuple[str, int], Any] = {}
        self._histograms: dict[str, Any] = {}

    def _request_id(self, headers: dict[str, str]) -> str:
        """The client's X-Request-ID if it is a safe token, else a fresh one."""
        given = headers.get("x-request-id", "")
        return given if _REQUEST_ID.fullmatch(given) else f"{self._ids.getrandbits(128):032x}"

    def _count(self, route: str, code: int, elapsed: float) -> None:
        counter = self._counters.get((route, code))
        if counter is None:
            counter = self._counters[(route, code)] = self.metrics.requests.labels(route, str(code))
        counter.inc()
        if route != "other":
            histogram = self._histograms.get(route)
            if histogram is None:
                histogram = self._histograms[route] = self.metrics.latency.labels(route)
            histogram.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers", [])
            if k.lower() in _WANTED_HEADERS
        }  # only the two read here: no dict of every header
        request_id = self._request_id(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        token = logs.request_id.set(request_id)
        path = scope.get("path", "")  # read once: an inner router may rewrite the scope
        status = {"code": 500}

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                extra = [
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"x-processing-time", f"{time.perf_counter() - start:.6f}".encode()),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            if await self._serve(scope, receive, send_wrapped, headers, path in self.routes.limited):
                status["code"] = _CLIENT_CLOSED
        finally:
            self._log(scope.get("method"), path, status["code"], time.perf_counter() - start)
            logs.request_id.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], limited: bool) -> bool:
        """Refuse early, or run the app (a limited route within the in-flight limit); True if the client left."""
        early = self._admit(headers, limited)
        if early is not None:
            await early(scope, receive, send)
            return False
        if not limited:
            await self.app(scope, self._capped(receive), send)
            return False
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            return await _run_until_disconnect(self.app, scope, self._capped(receive), send)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()

    def _log(self, method: str | None, path: str, code: int, elapsed: float) -> None:
        """Metrics and the access line of one finished request."""
        self._count(path if path in self.routes.known else "other", code, elapsed)
        log.info(
            "request",
            extra={
                "method": method,
                "path": path,
                "status": code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )

    def _admit(self, headers: dict[str, str], limited: bool) -> Any:
        """Refuse before reading the body: declared size over the cap, or too much work in flight."""
        error: GatewayError | None = None
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            error = PayloadTooLarge(str(_body_too_large(self.max_body_bytes).detail))
        elif limited and self.inflight >= self.max_inflight:
            self.metrics.rejected.labels("inflight").inc()
            error = Overloaded()
        return error_response(error) if error else None

    def _capped(self, receive: Receive) -> Receive:
        """Count streamed body bytes too: Content-Length may be absent (chunked) or lie."""
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _body_too_large(self.max_body_bytes)
            return message

        return wrapped


async def _run_until_disconnect(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> bool:
    """Run the app, cancelled if the client goes away before the response starts; True if it was."""
    started = False
    disconnected = False
    watcher: asyncio.Task[Message] | None = None

    async def watch() -> Message:
        nonlocal disconnected
        message = await receive()  # returns when the client disconnects or the response is complete
        if message["type"] == "http.disconnect" and not started:
            disconnected = True
            task.cancel()
        return message

    async def receive_wrapped() -> Message:
        nonlocal watcher
        if watcher is not None:  # body already read: share the watcher's answer
            return await asyncio.shield(watcher)
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            watcher = asyncio.create_task(watch())
        return message

    async def send_wrapped(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    task = asyncio.create_task(app(scope, receive_wrapped, send_wrapped))
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if disconnected and current is not None and not current.cancelling():
            return True
        raise
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
    return False
