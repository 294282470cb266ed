"""GatewayMiddleware on a stub ASGI app (no Triton, no network): request id, body cap, in-flight
limit, client-disconnect cancellation, and the 422 encoder's fallback."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway import logs
from gateway.errors import _jsonable_errors
from gateway.metrics import Metrics
from gateway.middleware import GatewayMiddleware, RouteSet

pytestmark = pytest.mark.timeout(10)
HEX_ID = re.compile(r"[0-9a-f]{32}")
ROUTES = RouteSet(
    known=frozenset({"/clip/embed_text", "/clip/compare", "/healthz"}),
    limited=frozenset({"/clip/embed_text", "/clip/compare"}),
)


class StubApp:
    """Reads the whole body, then (on /clip/ paths) waits on `gate` if any; answers 200 with the body size."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.cancelled = False
        self.started = asyncio.Event()
        self.request_ids: list[str | None] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.request_ids.append(logs.request_id.get())
        self.started.set()
        try:
            if self.gate is not None and scope["path"].startswith("/clip/"):
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def scope(path: str = "/clip/embed_text", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "method": "POST", "path": path, "headers": headers or []}


class Client:
    """Feeds body chunks, then blocks like uvicorn until disconnect (or returns it once `hang_up` is set)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.hang_up = asyncio.Event()
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.chunks:
            chunk = self.chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.hang_up.set()  # uvicorn: receive() answers http.disconnect once the response is complete

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    def header(self, name: bytes) -> bytes | None:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return dict(start["headers"]).get(name)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def metric(metrics: Metrics, line_start: str) -> float:
    text = generate_latest(metrics.registry).decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def make(app: Any, **kw: int) -> tuple[GatewayMiddleware, Metrics]:
    metrics = Metrics()
    return GatewayMiddleware(
        app,
        metrics=metrics,
        max_body_bytes=kw.get("max_body", 1024),
        max_inflight=kw.get("max_inflight", 4),
        routes=ROUTES,
    ), metrics


async def test_plain_request_passes_with_headers() -> None:
    app = StubApp()
    mw, metrics = make(app)
    client = Client([b"abc", b"de"])
    await mw(scope(headers=[(b"x-request-id", b"req-1")]), client.receive, client.send)
    assert client.status == 200 and client.body() == b"5"
    assert client.header(b"x-request-id") == b"req-1"
    assert float(client.header(b"x-processing-time")) >= 0
    assert app.request_ids == ["req-1"]  # the id is visible to every log line of the request
    assert logs.request_id.get() is None  # and reset afterwards
    assert metric(metrics, 'clip_gateway_requests_total{route="/clip/embed_text",status="200"}') == 1


@pytest.mark.parametrize("given", [b"", b"a b", b"x" * 129, b"<script>", b"\xff\xfe", b"a\tb", b'id"quoted'])
async def test_unsafe_or_missing_request_id_is_replaced(given: bytes) -> None:
    mw, _ = make(StubApp())
    client = Client([b""])
    await mw(scope(headers=[(b"x-request-id", given)]), client.receive, client.send)
    assert HEX_ID.fullmatch(client.header(b"x-request-id").decode())


async def test_body_cap_by_content_length_refuses_before_reading() -> None:
    app = StubApp()
    mw, _ = make(app, max_body=1024)
    client = Client([b"x"])
    await mw(scope(headers=[(b"content-length", b"1025")]), client.receive, client.send)
    assert client.status == 413 and not app.started.is_set()
    assert client.chunks == [b"x"]  # the body was never read
    assert json.loads(client.body())["message"].startswith("Request body is larger than 1024")


async def test_in_flight_limit_gives_fast_429_with_retry_after() -> None:
    gate = asyncio.Event()
    app = StubApp(gate)
    mw, metrics = make(app, max_inflight=1)
    first = Client([b"a"])
    running = asyncio.create_task(mw(scope(), first.receive, first.send))
    await asyncio.wait_for(app.started.wait(), 2)
    second = Client([b"b"])
    await asyncio.wait_for(mw(scope(), second.receive, second.send), 1)
    assert second.status == 429 and second.header(b"retry-after") == b"1"
    assert second.chunks == [b"b"]
    # probes are never limited
    probe = Client([b""])
    await mw(scope("/healthz"), probe.receive, probe.send)
    assert probe.status == 200
    gate.set()
    await running
    assert first.status == 200
    assert metric(metrics, 'clip_gateway_rejected_total{reason="inflight"}') == 1
    assert metric(metrics, "clip_gateway_inflight ") == 0


async def test_disconnect_before_response_cancels_the_app_and_frees_the_slot() -> None:
    gate = asyncio.Event()  # never set: the app would wait forever
    app = StubApp(gate)
    mw, metrics = make(app, max_inflight=1)
    client = Client([b"payload"])
    task = asyncio.create_task(mw(scope(), client.receive, client.send))
    await asyncio.wait_for(app.started.wait(), 2)
    client.hang_up.set()
    await asyncio.wait_for(task, 2)  # returns normally: nothing left to answer
    assert app.cancelled and client.status is None
    assert metric(metrics, 'clip_gateway_requests_total{route="/clip/embed_text",status="499"}') == 1
    assert metric(metrics, "clip_gateway_inflight ") == 0
    again = Client([b"x"])
    app.gate = None
    await asyncio.wait_for(mw(scope(), again.receive, again.send), 2)
    assert again.status == 200  # the slot was freed


async def test_completed_response_is_not_cancelled() -> None:
    app = StubApp()
    mw, metrics = make(app)
    client = Client([b"abc"])
    await mw(scope(), client.receive, client.send)
    assert not app.cancelled and client.status == 200
    assert metric(metrics, 'status="499"') == 0


async def test_server_shutdown_cancellation_still_propagates() -> None:
    """Cancelling the request task itself (not a disconnect) is re-raised, not swallowed as a 499."""
    gate = asyncio.Event()
    app = StubApp(gate)
    mw, _ = make(app)
    client = Client([b"x"])
    task = asyncio.create_task(mw(scope(), client.receive, client.send))
    await asyncio.wait_for(app.started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert app.cancelled


async def test_streamed_body_over_the_cap_is_refused() -> None:
    app = StubApp()
    mw, _ = make(app, max_body=1024)
    client = Client([b"x" * 600, b"x" * 600])
    with pytest.raises(Exception) as info:  # raised from receive(); FastAPI turns it into the 413 answer
        await mw(scope(), client.receive, client.send)
    assert getattr(info.value, "status_code", None) == 413


def test_validation_errors_with_unencodable_input_keep_fastapi_shape() -> None:
    deep: list = []
    cursor = deep
    for _ in range(400):
        cursor.append([])
        cursor = cursor[0]
    errors = [
        {"type": "list_type", "loc": ("body", "text"), "msg": "Input should be a valid list", "input": deep},
        {"type": "string_type", "loc": ("body", "id"), "msg": "Input should be a valid string", "input": 10**30},
    ]
    out = _jsonable_errors(errors)
    assert [e["type"] for e in out] == ["list_type", "string_type"]
    assert out[0]["loc"] == ["body", "text"] and isinstance(out[0]["input"], str) and len(out[0]["input"]) < 300
    assert isinstance(out[1]["input"], str)
    json.dumps(out)
