"""The run command supervises the real tritonserver and gateway (triton_clip/supervise.py).

One run command (`python -m triton_clip.run --no-export`, exactly what `make run` runs after its export)
serves the tiny model on free ports. Under a mixed load: Triton SIGKILLed (its leader only, as `kill -9`
would) → only 200/429/503 meanwhile, never a refused connection, readiness back within 30 s, every later
request 200, and none of the killed server's stubs left; Triton SIGSTOPped (hung) → requests time out
into 503, and all is well after SIGCONT; the gateway SIGKILLed → restarted. SIGTERM stops every process
of the service within a few seconds. A model that cannot load → the run command gives up and exits 1
with the reason, after its retries.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT, TINY, free_port
from tests.load import Load, wait_until
from triton_clip.local import http_ok, start_group, stop_process

pytestmark = pytest.mark.timeout(240)
TRITON_TIMEOUT_S = 2.0


@dataclass
class Service:
    proc: subprocess.Popen
    base_url: str
    log_file: Path

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def triton(self) -> psutil.Process:
        return next(p for p in psutil.Process(self.proc.pid).children() if p.name() == "tritonserver")

    def gateway(self) -> psutil.Process:
        return next(p for p in psutil.Process(self.proc.pid).children() if "gateway.serve" in " ".join(p.cmdline()))

    def ready(self) -> bool:
        return http_ok(f"{self.base_url}/readiness", 3)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def run_command(repository: Path, tmp: Path, **extra: str) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    env = dict(
        os.environ,
        MODEL_REPOSITORY=str(repository),
        CLIP_VERSIONS=TINY,
        CLIP_VERSION_ID=TINY,
        GATEWAY_PORT=str(port),
        TRITON_HTTP_PORT=str(free_port()),
        TRITON_GRPC_PORT=str(free_port()),
        TRITON_METRICS_PORT=str(free_port()),
        RUN_LOG_DIR=str(tmp),
        RUN_HANG_TIMEOUT_S="25",
        RUN_BACKOFF_MAX_S="2",
        GATEWAY_TRITON_TIMEOUT_S=str(TRITON_TIMEOUT_S),
        GATEWAY_MODEL_REFRESH_S="1",
        GATEWAY_LOG_LEVEL="WARNING",
        **extra,
    )
    log_file = tmp / "run.log"
    proc = start_group([sys.executable, "-m", "triton_clip.run", "--no-export"], env=env, log_file=log_file, cwd=ROOT)
    return proc, port, log_file


@pytest.fixture(scope="module")
def service(tiny_repository, tmp_path_factory) -> Iterator[Service]:
    proc, port, log_file = run_command(tiny_repository, tmp_path_factory.mktemp("run"))
    svc = Service(proc, f"http://127.0.0.1:{port}", log_file)
    try:
        wait_until(lambda: proc.poll() is not None or svc.ready(), 120)
        assert proc.poll() is None, svc.log()
        yield svc
    finally:
        stop_process(proc, 15)


def stubs_of(triton: psutil.Process) -> list[psutil.Process]:
    return [p for p in triton.children(recursive=True) if "triton_python_backend_stub" in " ".join(p.cmdline())]


def alive(p: psutil.Process) -> bool:
    try:  # same pid *and* same start time: not a new process that reused the pid
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def check_outage(load: Load, fault_at: float, ready_at: float) -> None:
    assert not load.errors(), f"transport errors at the gateway: {load.errors()[:5]}"
    assert load.statuses() <= {200, 429, 503}, load.statuses()
    assert any(s.status == 200 and s.at < fault_at for s in load.samples), "no success before the fault"
    later = [s for s in load.samples if s.at > ready_at + 0.2]
    assert later and all(s.status == 200 for s in later), [s for s in later if s.status != 200][:5]


def test_triton_sigkill_is_restarted_under_load_and_leaves_no_stub(service: Service) -> None:
    triton = service.triton()
    stubs = stubs_of(triton)
    assert stubs, "the tiny model's Python-backend stubs were not found"
    with Load(service.base_url, concurrency=4) as load:
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(triton.pid, signal.SIGKILL)  # the leader only, like `kill -9 <pid>`
        wait_until(lambda: not service.ready(), 10, 0.05)
        ready_at = wait_until(service.ready, 30)
        time.sleep(2.0)
    recovery = ready_at - killed_at
    print(
        f"SIGKILL: readiness back after {recovery:.1f}s; {len(load.samples)} requests, "
        f"{sum(s.status == 503 for s in load.samples)} x 503, {sum(s.status == 429 for s in load.samples)} x 429"
    )
    check_outage(load, killed_at, ready_at)
    assert any(s.status == 503 for s in load.samples), "no 503 while Triton was down: was it killed?"
    assert not [p.pid for p in stubs if alive(p)], "stubs of the killed tritonserver are still running"
    assert service.triton().pid != triton.pid
    assert "killed by SIGKILL; restarting" in service.log()


def test_triton_sigstop_times_out_into_503_then_recovers_after_sigcont(service: Service) -> None:
    triton = service.triton()
    with Load(service.base_url, concurrency=4) as load:
        time.sleep(1.0)
        stopped_at = time.monotonic()
        os.kill(triton.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: any(s.status == 503 and s.at > stopped_at for s in load.samples), 15)
            time.sleep(2.0)
        finally:
            os.kill(triton.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        ready_at = wait_until(service.ready, 30)
        time.sleep(2.0)
    print(
        f"SIGSTOP for {resumed_at - stopped_at:.1f}s: readiness back {ready_at - resumed_at:.1f}s after SIGCONT; "
        f"{sum(s.status == 503 for s in load.samples)} x 503"
    )
    check_outage(load, stopped_at, ready_at)
    timed_out = [s for s in load.samples if s.status == 503 and stopped_at < s.at < resumed_at]
    assert timed_out and max(s.elapsed for s in timed_out) >= TRITON_TIMEOUT_S * 0.9, "none waited out the deadline"
    assert service.triton().pid == triton.pid, "a short hang must not restart Triton"


def test_gateway_sigkill_is_restarted(service: Service) -> None:
    gateway = service.gateway()
    os.kill(gateway.pid, signal.SIGKILL)
    wait_until(lambda: not alive(gateway), 5, 0.05)
    killed_at = time.monotonic()
    wait_until(service.ready, 30)
    print(f"gateway SIGKILL: ready again after {time.monotonic() - killed_at:.1f}s")
    assert service.gateway().pid != gateway.pid
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        assert client.post("/clip/embed_text", json={"text": "back again"}).status_code == 200


def test_sigterm_stops_every_process_within_seconds(service: Service) -> None:
    everything = [psutil.Process(service.proc.pid), *service.descendants()]
    assert len(everything) >= 4  # run command, tritonserver + its stubs, gateway
    service.proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert service.proc.wait(15) == 0
    wait_until(lambda: not any(alive(p) for p in everything), 10, 0.1)
    print(f"SIGTERM: all {len(everything)} processes gone after {time.monotonic() - start:.1f}s")
    assert time.monotonic() - start < 10


def test_model_that_cannot_load_stops_the_run_command_with_the_reason(tiny_repository: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model_repository"
    shutil.copytree(tiny_repository, broken)
    (broken / f"clip-{TINY}-text" / "1" / "model.pt").write_bytes(b"not a TorchScript archive")
    proc, _, log_file = run_command(broken, tmp_path, RUN_MAX_FAILURES="2")
    try:
        code = proc.wait(150)
    finally:
        stop_process(proc)
    text = log_file.read_text(errors="replace")
    assert code == 1, text[-3000:]
    assert "tritonserver failed 2 times in a row" in text and "giving up" in text, text[-3000:]
    assert f"clip-{TINY}-text" in text.split("giving up", 1)[1], "the reason (Triton's log lines) is not shown"
    assert "restarting in" in text  # it did retry before giving up
