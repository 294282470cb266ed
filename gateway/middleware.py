"""Pure-ASGI middleware: request id, timing header, metrics, access log, body cap, back-pressure.

Written as raw ASGI (not BaseHTTPMiddleware) so it adds microseconds, streams nothing twice,
and can refuse an oversized or excess request before the body is even read.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Awaitable, Callable, MutableMapping

from gateway.errors import GatewayError, Overloaded, PayloadTooLarge, error_response
from gateway.metrics import Metrics
from starlette.exceptions import HTTPException as StarletteHTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("gateway.access")
_LIMITED_PREFIX = "/clip/"
_KNOWN_ROUTES = {"/clip/embed_image", "/clip/embed_text", "/clip/compare", "/healthz", "/readiness", "/info",
                 "/metrics", "/docs", "/openapi.json"}


def _body_too_large(limit: int) -> StarletteHTTPException:
    # An HTTPException raised inside receive() passes through FastAPI's body parsing unchanged.
    return StarletteHTTPException(413, f"Request body is larger than {limit} bytes.")


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int, max_inflight: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.max_inflight = max_inflight
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope.get("path", "")
        route = path if path in _KNOWN_ROUTES else "other"
        status = {"code": 500}

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                extra = [(b"x-request-id", request_id.encode("latin-1")),
                         (b"x-processing-time", f"{time.perf_counter() - start:.6f}".encode())]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        limited = path.startswith(_LIMITED_PREFIX)
        try:
            early = self._admit(headers, limited)
            if early is not None:
                await early(scope, receive, send_wrapped)
                return
            if limited:
                self.inflight += 1
                self.metrics.inflight.inc()
            try:
                await self.app(scope, self._capped(receive), send_wrapped)
            finally:
                if limited:
                    self.inflight -= 1
                    self.metrics.inflight.dec()
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(route, str(status["code"])).inc()
            if route != "other":
                self.metrics.latency.labels(route).observe(elapsed)
            log.info("request", extra={"request_id": request_id, "method": scope.get("method"), "path": path,
                                       "status": status["code"], "duration_ms": round(elapsed * 1000, 2)})

    def _admit(self, headers: dict[str, str], limited: bool) -> Any:
        """Refuse before reading the body: declared size over the cap, or too much work in flight."""
        error: GatewayError | None = None
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            error = PayloadTooLarge(str(_body_too_large(self.max_body).detail))
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
                if seen > self.max_body:
                    raise _body_too_large(self.max_body)
            return message

        return wrapped
