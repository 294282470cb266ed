"""The cheaper hot path keeps behaviour: the fast path only shortens well-formed requests (everything
else reaches FastAPI with the same body), and the hand-built ModelInferRequest is byte-identical to
what tritonclient's `infer` would send. The service is a stub here (no Triton): what is under test
is the routing of requests, not the model."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc._utils import _get_inference_request

from gateway.errors import UnknownVersion
from gateway.fastpath import ClipFastPath, _read_body
from gateway.triton import TritonClient

pytestmark = pytest.mark.timeout(10)


class Inner:
    """Stands for FastAPI: records the body it was given and answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.bodies.append(await _read_body(receive, []))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class StubService:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple] = []

    async def embed_texts(
        self, texts: list[str], version: str | None, truncate: bool, route: str = "clip"
    ) -> np.ndarray:  # ClipService.embed_texts' signature
        assert route == "clip"
        self.calls.append((texts, version, truncate))
        if self.error:
            raise self.error
        return np.ones((len(texts), 4), dtype=np.float32)


async def call(
    body: bytes,
    *,
    path: str = "/clip/embed_text",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    service: StubService | None = None,
):
    inner, service = Inner(), service or StubService()
    state = SimpleNamespace(service=service, keys=SimpleNamespace(check=lambda *a: None))
    app = SimpleNamespace(state=SimpleNamespace(gateway=state))
    chunks = [body[:5], body[5:]]
    sent: list[dict] = []

    async def receive() -> dict:
        if chunks:
            part = chunks.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "app": app,
        "headers": headers if headers is not None else [(b"content-type", b"application/json")],
    }
    await ClipFastPath(inner)(scope, receive, send)
    return sent[0]["status"], sent[1]["body"], inner.bodies, service.calls


async def test_plain_request_skips_fastapi_and_calls_the_route() -> None:
    status, body, inner, calls = await call(b'{"text": ["a dog", "a cat"], "truncate": true}')
    assert status == 200 and inner == []
    assert calls == [(["a dog", "a cat"], None, True)]
    assert json.loads(body)["embeddings"] == [[1.0] * 4] * 2


@pytest.mark.parametrize(
    "body, kw",
    [
        (b'{"text": "a dog"', {}),  # bad JSON: FastAPI's json_invalid 422
        (b'{"text": 3}', {}),  # schema error: FastAPI's 422
        (b'["a dog"]', {}),  # not an object
        (b'{"text": "a dog", "n": NaN}', {}),  # json.loads accepts, orjson refuses
        (b'{"text": "a dog"}', {"query": b"api_key=k"}),  # query parameters are FastAPI's to validate
        (b'{"text": "a dog"}', {"headers": [(b"content-type", b"text/plain")]}),
        (b'{"text": "a dog"}', {"headers": [(b"content-type", b"application/json"), (b"authorization", b"x")]}),
        (b'{"text": "a dog"}', {"headers": []}),  # no content type
        (b'{"text": "a dog"}', {"path": "/clip/other"}),
    ],
)
async def test_anything_else_reaches_fastapi_with_the_same_body(body: bytes, kw: dict) -> None:
    status, _, inner, calls = await call(body, **kw)
    assert status == 299 and inner == [body] and calls == []


async def test_service_errors_get_the_gateway_error_answer() -> None:
    status, body, inner, _ = await call(b'{"text": "a dog"}', service=StubService(UnknownVersion("x", ["clip-tiny"])))
    assert status == 404 and inner == []
    assert json.loads(body) == UnknownVersion("x", ["clip-tiny"]).body()


@pytest.mark.parametrize(
    "batch", [np.arange(32, dtype=np.int64).reshape(2, 16), np.zeros((3, 3, 8, 8), dtype=np.uint8)]
)
async def test_infer_request_is_what_tritonclient_sends(batch: np.ndarray) -> None:
    client = TritonClient("127.0.0.1:1", 7.5)
    try:
        for _ in range(2):  # the second one comes from the cached template
            ours = client._request("m", "in__0", "out__0", batch)
            tensor = InferInput("in__0", list(batch.shape), "UINT8" if batch.dtype == np.uint8 else "INT64")
            tensor.set_data_from_numpy(batch)
            theirs = _get_inference_request(
                model_name="m",
                inputs=[tensor],
                model_version="",
                request_id="",
                outputs=[InferRequestedOutput("out__0")],
                sequence_id=0,
                sequence_start=False,
                sequence_end=False,
                priority=0,
                timeout=7_500_000,
                parameters=None,
            )
            assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    finally:
        await client.close()
