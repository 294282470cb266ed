"""A shorter road for well-formed CLIP requests: the same route functions, without FastAPI's per-request work.

Profiling one short-text request (docs/benchmarks.md, "Serving cost") put about a third of the gateway's
CPU in FastAPI's request handling around the route: routing, the AsyncExitStack, dependency solving
with pydantic validation of each query/header parameter, and body parsing. This ASGI layer sits inside
GatewayMiddleware (request id, logs, metrics and limits are unchanged) and takes a request only when
it is the plain case: POST to one of the three routes, `Content-Type: application/json`, no query
string, no Authorization header, and a body that parses and validates against the same pydantic model.
That request is handed to the very route function FastAPI would call, with the same credentials.

Everything else goes to FastAPI untouched, with the body messages replayed: bad JSON, schema errors,
query-string keys, odd content types, disconnects during the body. So every error answer is still
FastAPI's own; only the happy path is shortened. The OpenAPI schema still comes from the routes.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.deps import Credentials
from gateway.errors import GatewayError, error_response, http_error_response
from gateway.middleware import ASGIApp, Message, Receive, Scope, Send
from gateway.routes import clip
from gateway.schemas import ClipCompareRequest, ClipImageEmbeddingRequest, ClipTextEmbeddingRequest

_ROUTES: dict[str, tuple[type[BaseModel], Any]] = {
    "/clip/embed_image": (ClipImageEmbeddingRequest, clip.embed_image),
    "/clip/embed_text": (ClipTextEmbeddingRequest, clip.embed_text),
    "/clip/compare": (ClipCompareRequest, clip.compare),
}
_NO_CREDENTIALS = Credentials(None, None)


def _plain_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """`Content-Type: application/json` exactly once, and no Authorization header (FastAPI reads those)."""
    content_types = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            return False
        if lowered == b"content-type":
            content_types += 1
            if value.lower() != b"application/json":
                return False
    return content_types == 1


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The messages already read, then the live channel (disconnect detection keeps working)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class ClipFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope.get("method") == "POST" and not scope.get("query_string"):
            route = _ROUTES.get(scope.get("path", ""))
        if route is None or not _plain_json(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            body = await _read_body(receive, messages)
        except StarletteHTTPException as exc:  # the body cap, raised by GatewayMiddleware's receive
            await http_error_response(exc)(scope, receive, send)
            return
        request = _parse(route[0], body) if body is not None else None
        if request is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            response = await route[1](request, scope["app"].state.gateway, _NO_CREDENTIALS)
        except GatewayError as exc:  # what FastAPI's handler for GatewayError answers (gateway/errors.py)
            response = error_response(exc)
        await response(scope, _replay([], receive), send)


async def _read_body(receive: Receive, messages: list[Message]) -> bytes | None:
    """The whole body, or None if the stream ended otherwise (then FastAPI replays and decides)."""
    chunks = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """Validated request, or None when FastAPI must answer (it parses with json.loads: same values when
    orjson accepts the bytes; orjson refuses the rest, e.g. NaN, ints past 64 bits, non-UTF-8)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI validates a body field
    except ValidationError:
        return None
