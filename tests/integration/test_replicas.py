"""Load spread over Triton replicas: two real tritonservers on 127.0.0.1 behind one gateway.

GATEWAY_TRITON_URL lists both; the gateway's channel round-robins over them (gateway/endpoints.py).
Both execute inferences under load (Triton's own statistics, neither below 30 %); one killed under load
→ requests keep succeeding (an inference that fails with UNAVAILABLE is retried once on the other);
restarted on the same ports → it receives traffic again.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY, TritonEndpoints, free_port, start_gateway, stop_process
from tests.load import Load, wait_until

pytestmark = pytest.mark.timeout(240)


def executed(server) -> int:
    """Requests this server executed successfully (all models), from its statistics endpoint."""
    url = f"http://{server.opts.local_host}:{server.opts.http_port}/v2/models/stats"
    with urllib.request.urlopen(url, timeout=5) as r:
        stats = json.load(r)
    return sum(int(m["inference_stats"]["success"]["count"]) for m in stats["model_stats"])


@pytest.fixture(scope="module")
def replicas(tiny_repository: Path, tmp_path_factory) -> Iterator[list]:
    from triton_clip.server import TritonOptions, TritonProcess

    logs = tmp_path_factory.mktemp("replicas")
    servers = [
        TritonProcess(
            TritonOptions(tiny_repository, "127.0.0.1", free_port(), free_port(), free_port()),
            log_file=logs / f"triton-{i}.log",
        )
        for i in range(2)
    ]
    try:
        for s in servers:
            s.wait_ready(180)
        yield servers
    finally:
        for s in servers:
            s.kill()  # the whole group; a graceful unload (~7 s each here) proves nothing in this test


def test_two_replicas_share_the_load_survive_a_kill_and_rejoin(replicas, tmp_path: Path) -> None:
    from triton_clip.server import TritonProcess

    a, b = replicas
    url = f"{a.opts.grpc_url},{b.opts.grpc_url}"
    gw = start_gateway(TritonEndpoints(None, "", url, tmp_path / "x.log"), tmp_path / "gw.log", CLIP_VERSION_ID=TINY)
    try:
        before = [executed(a), executed(b)]
        with Load(gw.base_url, concurrency=6, max_requests=400) as load:
            wait_until(lambda: len(load.samples) >= 300, 60)
        done = [executed(a) - before[0], executed(b) - before[1]]
        share = min(done) / sum(done)
        print(f"replica split over {sum(done)} Triton requests: {done} ({share:.0%} on the smaller)")
        assert load.statuses() == {200}
        assert share >= 0.30

        with Load(gw.base_url, concurrency=6) as load:
            time.sleep(1.0)
            killed_at = time.monotonic()
            b.kill()  # the whole process group, stubs included
            time.sleep(3.0)
        failed = [s for s in load.samples if s.status != 200]
        after_kill = [s for s in load.samples if s.at >= killed_at]
        print(
            f"replica killed: {len(after_kill)} requests after the kill, {len(failed)} failed "
            f"({sorted({s.status for s in failed})})"
        )
        assert len(after_kill) > 20
        assert not failed, f"{len(failed)} requests failed while one replica was down"

        replicas[1] = b = TritonProcess(b.opts, log_file=b.log_file)
        b.wait_ready(180)
        restarted_at = time.monotonic()
        start_b = executed(b)
        with Load(gw.base_url, concurrency=6) as load:
            # gRPC reconnects to it after its reconnect backoff (at most 1 s, gateway/triton.py channel_args)
            back_at = wait_until(lambda: executed(b) > start_b, 15, 0.1)
            first_b, first_n = executed(b), len(load.samples)
            wait_until(lambda: len(load.samples) >= first_n + 200, 60)
            rejoined, window = executed(b) - first_b, len(load.samples) - first_n
        print(
            f"replica restarted: traffic again {back_at - restarted_at:.1f}s after it was ready; it then executed "
            f"{rejoined} Triton requests for the next {window} gateway requests"
        )
        assert load.statuses() == {200}
        assert rejoined >= 0.2 * window
    finally:
        stop_process(gw.proc)
