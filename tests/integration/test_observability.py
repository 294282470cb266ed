"""Observability of the real session gateway: Prometheus /metrics, X-Request-Id, X-Processing-Time, JSON logs."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.payloads import image, png_bytes, raw_http

pytestmark = pytest.mark.timeout(60)

PNG = png_bytes()
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def client(gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=20) as c:
        yield c


def scrape(client: httpx.Client) -> tuple[dict[str, str], dict[tuple[str, frozenset], float]]:
    """(family name -> type, (sample name, labels) -> value)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_expose_every_family(client: httpx.Client) -> None:
    _, before = scrape(client)
    text = f"observability probe {uuid.uuid4().hex}"
    assert client.post("/clip/embed_image", json={"image": image(PNG)}).status_code == 200
    assert client.post("/clip/embed_text", json={"text": [text]}).status_code == 200
    assert client.post("/clip/embed_text", json={"text": [text]}).status_code == 200  # a cache hit
    prompts = [f"{text} a", f"{text} b"]  # never seen before: no cache hit here
    assert client.post("/clip/compare", json={"subject": image(PNG), "prompt": prompts}).status_code == 200
    assert client.post("/clip/embed_image", json={"image": {"type": "base64", "value": "abc"}}).status_code == 400
    url = {"type": "url", "value": "https://127.0.0.1/a.png"}
    assert client.post("/clip/embed_image", json={"image": url}).status_code == 400
    assert client.post("/clip/embed_text", json={"text": "a", "clip_version_id": "nope"}).status_code == 404
    assert client.post("/clip/compare", json={}).status_code == 422
    types, after = scrape(client)

    expected_types = {
        "clip_gateway_requests": "counter",
        "clip_gateway_request_seconds": "histogram",
        "clip_gateway_stage_seconds": "histogram",
        "clip_gateway_inflight": "gauge",
        "clip_gateway_rejected": "counter",
        "clip_gateway_url_fetch_failures": "counter",
        "clip_gateway_image_errors": "counter",
        "clip_gateway_text_cache_hits": "counter",
        "clip_gateway_text_cache_misses": "counter",
        "clip_gateway_triton_errors": "counter",
    }
    for family, kind in expected_types.items():
        assert types.get(family) == kind, f"{family}: {types.get(family)}"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # requests and errors by route and status
    assert delta("clip_gateway_requests_total", route="/clip/embed_image", status="200") == 1
    assert delta("clip_gateway_requests_total", route="/clip/embed_image", status="400") == 2
    assert delta("clip_gateway_requests_total", route="/clip/embed_text", status="200") == 2
    assert delta("clip_gateway_requests_total", route="/clip/embed_text", status="404") == 1
    assert delta("clip_gateway_requests_total", route="/clip/compare", status="200") == 1
    assert delta("clip_gateway_requests_total", route="/clip/compare", status="422") == 1
    # latency histograms: total per route, and the decode / tokenize / Triton stages
    for route, count in (("/clip/embed_image", 3), ("/clip/embed_text", 3), ("/clip/compare", 2)):
        assert delta("clip_gateway_request_seconds_count", route=route) == count
        assert value(after, "clip_gateway_request_seconds_bucket", route=route, le="+Inf") >= count
    for stage in ("decode", "tokenize", "triton"):
        assert delta("clip_gateway_stage_seconds_count", stage=stage) >= 1, stage
        assert value(after, "clip_gateway_stage_seconds_sum", stage=stage) > 0
    # in-flight back to zero once idle; queue rejections exported (at 0 on this gateway)
    assert value(after, "clip_gateway_inflight") == 0
    assert ("clip_gateway_rejected_total", frozenset({("reason", "inflight")})) in after
    assert ("clip_gateway_rejected_total", frozenset({("reason", "triton_queue")})) in after
    # URL fetch failures by reason, image errors by reason, cache hits
    assert delta("clip_gateway_url_fetch_failures_total", reason="fqdn") == 1
    assert delta("clip_gateway_image_errors_total", reason="base64") == 1
    assert delta("clip_gateway_text_cache_hits_total") == 1
    assert delta("clip_gateway_text_cache_misses_total") >= 1


def test_request_id_is_echoed_when_sent(client: httpx.Client) -> None:
    for given in ("obs-echo-1", "4bf92f3577b34da6a3ce929d0e0e4736", "trace:abc/def+1=="):
        response = client.post("/clip/embed_text", json={"text": "a"}, headers={"X-Request-Id": given})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == given


def test_request_id_is_generated_when_absent(client: httpx.Client) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3 and all(HEX_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize("given", ["has space", "x" * 129, "<script>", "a\tb", "\u00e9t\u00e9"])
def test_unsafe_request_id_is_replaced(gateway, given: str) -> None:
    """An id is echoed in a header and written to logs: anything but a plain token is replaced."""
    with httpx.Client(base_url=gateway.base_url, timeout=20) as c:
        response = c.get("/healthz", headers=[(b"X-Request-Id", given.encode("latin-1"))])
    assert response.status_code == 200
    assert HEX_ID.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/clip/embed_image", {"image": image(PNG)}, 200),
        ("POST", "/clip/embed_image", {"image": {"type": "base64", "value": "abc"}}, 400),
        ("POST", "/clip/compare", {}, 422),
        ("POST", "/clip/embed_text", {"text": "a", "clip_version_id": "nope"}, 404),
        ("GET", "/healthz", None, 200),
        ("GET", "/nowhere", None, 404),
    ],
)
def test_every_answer_has_request_id_and_processing_time(
    client: httpx.Client, method: str, path: str, body: object, status: int
) -> None:
    rid = f"obs-{uuid.uuid4().hex[:12]}"
    response = client.request(method, path, json=body, headers={"X-Request-Id": rid})
    assert response.status_code == status
    assert response.headers["x-request-id"] == rid
    processing = float(response.headers["x-processing-time"])
    assert 0 <= processing < 10


def test_413_before_reading_the_body_still_has_headers(gateway) -> None:
    head = (
        b"POST /clip/embed_text HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 67108864\r\nX-Request-Id: obs-413\r\nConnection: close\r\n\r\n"
    )
    status, headers, _ = raw_http(urlsplit(gateway.base_url).port, head, [b"{"])
    assert status == 413
    assert headers["x-request-id"] == "obs-413"
    float(headers["x-processing-time"])


def _log_lines(path) -> list[dict]:  # noqa: ANN001
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"gateway log line is not JSON: {line[:200]}")
    return parsed


def test_logs_are_json_and_carry_the_request_id(client: httpx.Client, gateway) -> None:
    rid = f"obs-log-{uuid.uuid4().hex[:12]}"
    url = {"type": "url", "value": "https://127.0.0.1/secret-path.png"}
    response = client.post("/clip/embed_image", json={"image": url}, headers={"X-Request-Id": rid})
    assert response.status_code == 400
    deadline = time.monotonic() + 5
    while True:
        entries = _log_lines(gateway.log_file)
        mine = [e for e in entries if e.get("request_id") == rid]
        if any(e.get("logger") == "gateway.access" for e in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    access = [e for e in mine if e.get("logger") == "gateway.access"]
    assert len(access) == 1, mine
    assert access[0]["path"] == "/clip/embed_image" and access[0]["status"] == 400
    assert access[0]["method"] == "POST" and access[0]["duration_ms"] >= 0
    # A line logged deeper in the request (the URL refusal) carries the same id, and no URL.
    refusal = [e for e in mine if e.get("logger") == "gateway.images.fetch"]
    assert refusal and "secret-path" not in json.dumps(refusal)
    # uvicorn's own lines go through the same JSON handler.
    assert any(e.get("logger", "").startswith("uvicorn") for e in entries)
