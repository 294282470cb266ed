"""GATEWAY_WORKERS=2 (gateway/serve.py): two uvicorn workers on one port in front of the real Triton.

`/metrics` sums every worker (prometheus_client multiprocess mode): its request counter equals the number
of requests sent, exactly, and each worker's own file shows it served part of them. Killing one worker
under load loses only what was in flight on it; the other keeps answering, uvicorn starts a new one,
readiness stays right, and the counters still match the successes exactly.
"""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import start_gateway, stop_process
from tests.load import Load, wait_until

pytestmark = pytest.mark.timeout(180)
ROUTE = "/clip/embed_text"
N = 120


def counted(base_url: str, route: str = ROUTE) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = rf'^clip_gateway_requests_total\{{route="{re.escape(route)}",status="200"\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def per_worker(folder: Path) -> dict[int, float]:
    """Each worker's own embed_text count, read from its multiprocess file."""
    out: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[-1])
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if '"clip_gateway_requests_total"' in key and ROUTE in key and '"200"' in key:
                out[pid] = out.get(pid, 0) + value
    return out


def workers_of(master: int) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(master).children():
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:  # a killed worker not reaped yet (zombie)
            pass
    return found


def send(base_url: str, n: int) -> list[int]:
    def one(i: int) -> int:
        with httpx.Client(base_url=base_url, timeout=30, headers={"connection": "close"}) as client:
            return client.post(ROUTE, json={"text": f"worker test {i}"}).status_code

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(one, range(n)))


def test_two_workers_metrics_are_exact_and_both_serve(triton, tmp_path: Path) -> None:
    folder = tmp_path / "prom"
    gw = start_gateway(triton, tmp_path / "gw.log", workers=2, GATEWAY_METRICS_DIR=str(folder))
    try:
        assert len(workers_of(gw.pid)) == 2
        for _ in range(6):
            assert httpx.get(f"{gw.base_url}/readiness", headers={"connection": "close"}).status_code == 200
        statuses = send(gw.base_url, N)
        assert statuses == [200] * N
        assert counted(gw.base_url) == N  # the same answer whichever worker serves /metrics
        assert counted(gw.base_url) == N
        shares = per_worker(folder)
        print(f"2 workers: requests per worker {shares}")
        assert len(shares) == 2 and min(shares.values()) > 0 and sum(shares.values()) == N
    finally:
        stop_process(gw.proc)
    assert not folder.exists() or not any(folder.glob("gauge_live*")), "live gauges left after a clean stop"


def test_killing_one_worker_loses_only_its_inflight_requests(triton, tmp_path: Path) -> None:
    gw = start_gateway(
        triton,
        tmp_path / "gw.log",
        workers=2,
        GATEWAY_METRICS_DIR=str(tmp_path / "prom"),
        GATEWAY_MODEL_REFRESH_S="0.5",
    )
    try:
        victim = workers_of(gw.pid)[0]
        with Load(gw.base_url, concurrency=4, keepalive=False) as load:
            time.sleep(1.5)
            killed_at = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            wait_until(lambda: len([p for p in workers_of(gw.pid) if p.pid != victim.pid]) == 2, 30)
            time.sleep(1.5)
        failed = [s for s in load.samples if s.status != 200]
        print(f"worker SIGKILL: {len(load.samples)} requests, {len(failed)} failed ({[s.error for s in failed]})")
        assert len(failed) <= 4, failed  # at most what was in flight on the killed worker
        assert all(s.status == 200 for s in load.samples if s.at > killed_at + 0.2)
        assert all(s.at <= killed_at + 0.2 for s in failed)
        assert httpx.get(f"{gw.base_url}/readiness").status_code == 200
        text_ok = sum(1 for s in load.samples if s.status == 200 and s.route == ROUTE)
        assert counted(gw.base_url) == text_ok  # the dead worker's counts survive it
        inflight = re.search(r"^clip_gateway_inflight (\S+)$", httpx.get(f"{gw.base_url}/metrics").text, re.MULTILINE)
        assert inflight and float(inflight.group(1)) == 0  # the dead worker's in-flight gauge was dropped
    finally:
        stop_process(gw.proc)
