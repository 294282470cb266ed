"""Back-pressure and client disconnects on a real gateway process with GATEWAY_MAX_INFLIGHT=1.

- A burst of concurrent heavy requests: the excess is refused at once with 429 + Retry-After
  (before its body is read), faster than any admitted request completes; never a 5xx.
- A client that hangs up mid-request gets its work cancelled: the gateway drops its outgoing
  work at once (seen here on a slow image server, whose connection the gateway closes), the
  in-flight slot is freed, and the request is counted with status 499.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import serve_in_thread
from PIL import Image

from tests.conftest import GatewayServer, start_gateway, stop_process
from tests.integration.payloads import image, png_bytes

pytestmark = pytest.mark.timeout(120)

BURST = 10


def heavy_png() -> bytes:
    """Small on the wire (flat colour compresses ~1000x), expensive to decode and resize (16 Mpx)."""
    import io

    out = io.BytesIO()
    Image.new("RGB", (4000, 4000), (90, 140, 200)).save(out, "PNG")
    return out.getvalue()


class SlowImageServer(ThreadingHTTPServer):
    """Sends an image one byte every 0.1 s (10 s in all); records when the client hangs up."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.started = threading.Event()
        self.hung_up_at: float | None = None


class _SlowHandler(BaseHTTPRequestHandler):
    server: SlowImageServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.server.started.set()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            self.server.hung_up_at = time.monotonic()


@pytest.fixture(scope="module")
def slow_server() -> Iterator[SlowImageServer]:
    yield from serve_in_thread(SlowImageServer())


@pytest.fixture(scope="module")
def limited(triton, tmp_path_factory) -> Iterator[GatewayServer]:
    log = tmp_path_factory.mktemp("backpressure") / "gateway.log"
    server = start_gateway(
        triton,
        log,
        GATEWAY_MAX_INFLIGHT="1",
        ALLOW_NON_HTTPS_URL_INPUT="true",
        ALLOW_URL_INPUT_WITHOUT_FQDN="true",
        ALLOW_URL_TO_NON_GLOBAL_ADDRESSES="true",
        GATEWAY_URL_TOTAL_TIMEOUT_S="30",
    )
    try:
        yield server
    finally:
        stop_process(server.proc)


def _metric(base_url: str, line_start: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


def test_burst_past_the_inflight_limit_gets_fast_429s(limited: GatewayServer) -> None:
    body = {"image": [image(heavy_png())] * 4}
    barrier = threading.Barrier(BURST)
    results: list[tuple[int, float, str | None]] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=limited.base_url, timeout=30) as client:
            barrier.wait(timeout=10)
            t0 = time.monotonic()
            response = client.post("/clip/embed_image", json=body)
            elapsed = time.monotonic() - t0
        with lock:
            results.append((response.status_code, elapsed, response.headers.get("retry-after")))

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == BURST
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    ok = [e for s, e, _ in results if s == 200]
    refused = [(e, ra) for s, e, ra in results if s == 429]
    print(
        f"burst: {len(ok)} x 200 in {min(ok):.2f}-{max(ok):.2f}s, "
        f"{len(refused)} x 429 in {min((e for e, _ in refused), default=0):.3f}-"
        f"{max((e for e, _ in refused), default=0):.3f}s"
    )
    assert ok and refused, statuses
    assert all(ra is not None and int(ra) >= 1 for _, ra in refused)
    assert max(e for e, _ in refused) < min(ok), (refused, ok)  # refused at the door, not after queueing
    assert statistics.median(e for e, _ in refused) < 0.5
    assert _metric(limited.base_url, 'clip_gateway_rejected_total{reason="inflight"}') >= len(refused)
    # and the gateway is fine afterwards
    assert (
        httpx.post(f"{limited.base_url}/clip/embed_image", json={"image": image(png_bytes())}, timeout=30).status_code
        == 200
    )


def test_client_disconnect_cancels_the_work(limited: GatewayServer, slow_server: SlowImageServer) -> None:
    before_499 = _metric(limited.base_url, 'clip_gateway_requests_total{route="/clip/embed_image",status="499"}')
    slow_server.started.clear()
    slow_server.hung_up_at = None
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/image.png"
    payload = ('{"image": {"type": "url", "value": "%s"}}' % url).encode()
    head = (
        f"POST /clip/embed_image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    port = urlsplit(limited.base_url).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(head + payload)
        assert slow_server.started.wait(10), "the gateway never started fetching"
        time.sleep(0.3)
    finally:
        sock.close()  # the client goes away mid-request
    closed_at = time.monotonic()

    deadline = closed_at + 5
    while slow_server.hung_up_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_server.hung_up_at is not None, "the gateway kept fetching for a client that had left"
    assert slow_server.hung_up_at - closed_at < 3

    # The single in-flight slot is free again at once (no 429), and the request was counted as 499.
    response = httpx.post(f"{limited.base_url}/clip/embed_text", json={"text": "after a disconnect"}, timeout=10)
    assert response.status_code == 200, response.text
    assert _metric(limited.base_url, "clip_gateway_inflight ") == 0
    after_499 = _metric(limited.base_url, 'clip_gateway_requests_total{route="/clip/embed_image",status="499"}')
    assert after_499 == before_499 + 1
    assert limited.proc.poll() is None
