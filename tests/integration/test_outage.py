"""Triton outage under load: a separate tritonserver is killed (SIGKILL to its process group) and
restarted on the same ports while 4 workers keep calling embed_text and embed_image.

While it is down the gateway answers only 503 with Retry-After (never another status, never a hang
past GATEWAY_TRITON_TIMEOUT_S) and /readiness is 503; once the new Triton is ready, requests
succeed again within 10 s, without restarting the gateway, whose process never dies.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TritonEndpoints, free_port, start_gateway, stop_process
from tests.integration.payloads import image, png_bytes

pytestmark = pytest.mark.timeout(300)

TRITON_TIMEOUT_S = 5.0
WORKERS = 4
MAX_REQUESTS_PER_WORKER = 1500
PACE_S = 0.05  # leave the 2 cores to the restarting Triton
HEALTHY_BEFORE_KILL_S = 2.0
DOWN_FOR_S = 3.0
# The issue asks for 10 s; we hold 5 s so that losing the short gRPC reconnect backoff (gateway/triton.py
# channel_args: about 7 s here before it, growing with the outage) fails this test.
RECOVERY_WITHIN_S = 5.0
PNG = png_bytes(32, 32, (1, 2, 3))


@dataclass
class Sample:
    at: float
    route: str
    status: int  # 0: no HTTP answer at all (connection error or client timeout)
    elapsed: float
    retry_after: str | None


def _worker(base_url: str, index: int, stop: threading.Event, out: list[Sample], lock: threading.Lock) -> None:
    with httpx.Client(base_url=base_url, timeout=TRITON_TIMEOUT_S + 10) as client:
        for n in range(MAX_REQUESTS_PER_WORKER):
            if stop.is_set():
                return
            if n % 2:
                route, body = "/clip/embed_image", {"image": image(PNG)}
            else:  # never the same text twice: a cache hit would not reach Triton
                route, body = "/clip/embed_text", {"text": f"outage {index} {n} {uuid.uuid4().hex}"}
            t0 = time.monotonic()
            try:
                response = client.post(route, json=body)
                status, retry_after = response.status_code, response.headers.get("retry-after")
            except httpx.HTTPError:
                status, retry_after = 0, None
            with lock:
                out.append(Sample(t0, route, status, time.monotonic() - t0, retry_after))
            time.sleep(PACE_S)


def _poll_readiness(base_url: str, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while not stop.wait(0.25):
            try:
                out.append((time.monotonic(), client.get("/readiness").status_code))
            except httpx.HTTPError:
                out.append((time.monotonic(), 0))


def test_triton_killed_and_restarted_under_load(tiny_repository: Path, tmp_path: Path) -> None:
    from triton_clip.server import TritonOptions, TritonProcess

    opts = TritonOptions(tiny_repository, "127.0.0.1", free_port(), free_port(), free_port())
    endpoints = TritonEndpoints(
        None, f"127.0.0.1:{opts.http_port}", f"127.0.0.1:{opts.grpc_port}", tmp_path / "triton-1.log"
    )
    first = TritonProcess(opts, log_file=tmp_path / "triton-1.log")
    second: TritonProcess | None = None
    gateway = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    samples: list[Sample] = []
    readiness: list[tuple[float, int]] = []
    lock = threading.Lock()
    try:
        first.wait_ready(180)
        gateway = start_gateway(
            endpoints,
            tmp_path / "gateway.log",
            GATEWAY_TRITON_TIMEOUT_S=str(TRITON_TIMEOUT_S),
            GATEWAY_MODEL_REFRESH_S="1",
        )
        threads = [
            threading.Thread(target=_worker, args=(gateway.base_url, i, stop, samples, lock), daemon=True)
            for i in range(WORKERS)
        ]
        threads.append(threading.Thread(target=_poll_readiness, args=(gateway.base_url, stop, readiness), daemon=True))
        for t in threads:
            t.start()

        time.sleep(HEALTHY_BEFORE_KILL_S)
        killed_at = time.monotonic()
        first.kill()
        time.sleep(DOWN_FOR_S)
        assert gateway.proc.poll() is None, "the gateway died with Triton"
        second = TritonProcess(opts, log_file=tmp_path / "triton-2.log")
        second.wait_ready(180)
        ready_at = time.monotonic()

        # Keep the load on until both routes have succeeded again (bounded by the recovery budget + 2 s).
        recovered_at: dict[str, float] = {}
        while time.monotonic() < ready_at + RECOVERY_WITHIN_S + 2 and len(recovered_at) < 2:
            with lock:
                for s in samples:
                    if s.at >= ready_at and s.status == 200:
                        recovered_at.setdefault(s.route, s.at + s.elapsed)
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(TRITON_TIMEOUT_S + 15)
        if gateway is not None:
            gateway_alive = gateway.proc.poll() is None
            stop_process(gateway.proc)
        for server in (second, first):
            if server is not None:
                server.kill()

    print(
        f"outage: {len(samples)} requests, Triton down {ready_at - killed_at:.1f}s, "
        f"{sum(s.status == 503 for s in samples)} x 503, recovered after "
        f"{ {r: round(t - ready_at, 2) for r, t in recovered_at.items()} } s"
    )
    assert gateway_alive, "the gateway process died during the outage"
    assert samples, "no load was sent"
    statuses = {s.status for s in samples}
    assert statuses <= {200, 503}, sorted((s.status, s.route) for s in samples if s.status not in (200, 503))[:10]
    unavailable = [s for s in samples if s.status == 503]
    assert unavailable, "killing Triton produced no 503: was it really killed?"
    assert all(s.retry_after is not None and int(s.retry_after) >= 1 for s in unavailable)
    assert any(s.status == 200 and s.at < killed_at for s in samples), "no success before the kill"
    # Only 503s while it is down (answers to requests sent after the kill had taken effect).
    down = [s for s in samples if killed_at + 0.5 <= s.at and s.at + s.elapsed <= ready_at - 0.5]
    assert down and all(s.status == 503 for s in down), [(s.route, s.status) for s in down if s.status != 503]
    # No request hung past its timeout (plus scheduling slack on 2 busy cores).
    slowest = max(s.elapsed for s in samples)
    assert slowest < TRITON_TIMEOUT_S + 3, f"a request took {slowest:.1f}s"
    # /readiness followed Triton.
    assert any(code == 200 for t, code in readiness if t < killed_at)
    down_readiness = [code for t, code in readiness if killed_at + 1 <= t <= ready_at - 0.5]
    assert down_readiness and set(down_readiness) == {503}, down_readiness
    # Both routes recovered on their own, within the budget.
    for route in ("/clip/embed_text", "/clip/embed_image"):
        assert route in recovered_at, f"{route} did not recover within {RECOVERY_WITHIN_S}s of Triton being ready"
        assert recovered_at[route] - ready_at < RECOVERY_WITHIN_S
