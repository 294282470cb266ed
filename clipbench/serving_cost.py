"""Whole-service CPU per request: `wrk` against one gateway in front of the real tritonserver (tiny model).

The tiny test model (tests/fixtures/clip-tiny.json) computes almost nothing, so what is measured is
the service itself: HTTP parsing, validation, middleware, logs, metrics, decode, the gRPC client,
tritonserver and the Python-backend stub. CPU seconds of every process of the service (and their
descendants) are divided by the requests wrk completed; the share of the machine used by everyone
else during the run is reported next to it, since the machine is shared.

`--code-root` runs the export and the gateway from another checkout (e.g. a worktree of main), so
the "before" and "after" are measured by the same harness.
"""

from __future__ import annotations

import base64
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from clipbench.cost_report import Result, format_row
from clipbench.payloads import photographic_jpeg
from clipbench.procstat import CpuWindow
from triton_clip.launch import Gateway, start_gateway
from triton_clip.local import free_port
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

ROOT = Path(__file__).resolve().parent.parent
TINY = "clip-tiny"
_EXPORT = (
    "import sys, open_clip; from pathlib import Path;"
    "open_clip.add_model_config(Path('tests/fixtures/clip-tiny.json'));"
    "from triton_clip.export import ExportRequest, export_version;"
    "export_version(ExportRequest('clip-tiny', 'none', 'cpu', cpu_threads=1), Path(sys.argv[1]))"
)
# Unique short prompts (the gateway's text cache never hits), generated inside wrk.
_TEXT_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"text": "a photo of a small dog number ' .. counter .. '-' .. math.random(1, 1000000000) .. '"}'
  return wrk.format("POST", "/clip/embed_text", {["Content-Type"] = "application/json"}, body)
end
"""
_FILE_LUA = """
local f = assert(io.open("{path}", "rb"))
wrk.method = "POST"
wrk.path = "{route}"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def photo_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    """The benchmarks' photographic JPEG at 5.0 noise / quality 86: 72 KB, 96 KB as base64 (the issue's is 97 KB)."""
    return photographic_jpeg(width, height, seed, noise_sd=5.0, quality=86)


class Service:
    """tritonserver on the exported tiny model plus one uvicorn gateway, both started and stopped by us."""

    def __init__(self, code_root: Path, work: Path, env: dict[str, str]) -> None:
        self.code_root, self.work, self.env = code_root, work, env
        self.triton: TritonProcess | None = None
        self.gateway: Gateway | None = None

    def __enter__(self) -> Self:
        repo = self.work / "model_repository"
        py = {**os.environ, "PYTHONPATH": str(self.code_root)}
        subprocess.run(
            [sys.executable, "-c", _EXPORT, str(repo)],
            cwd=self.code_root,
            env=py,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        install(DEFAULT_HOME)
        opts = TritonOptions(repo, "127.0.0.1", free_port(), free_port(), free_port())
        self.triton = TritonProcess(opts, log_file=self.work / "tritonserver.log")
        self.triton.wait_ready(180)
        env = {
            **py,
            "GATEWAY_TRITON_URL": f"127.0.0.1:{opts.grpc_port}",
            "CLIP_VERSION_ID": TINY,
            "GATEWAY_LOG_JSON": "true",
            "GATEWAY_LOG_LEVEL": "INFO",
            "GATEWAY_MAX_INFLIGHT": "512",
            **self.env,
        }
        log_file = self.work / "gateway.log"
        self.gateway = start_gateway(env, workers=1, log_file=log_file, ready_timeout_s=60, code_root=self.code_root)
        self.base_url = self.gateway.base_url
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        if self.triton is not None:
            self.triton.stop()

    def roots(self) -> dict[str, int]:
        assert self.triton is not None and self.gateway is not None
        return {"gateway": self.gateway.pid, "triton": self.triton.pid}


def _latency_ms(text: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def run_wrk(url: str, lua: Path, seconds: float, connections: int) -> tuple[subprocess.Popen, str]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", str(lua), url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, " ".join(cmd)


def measure(
    service: Service, scenario: str, lua: Path, seconds: float, connections: int, code: str, profile: Path | None = None
) -> Result:
    """One wrk run; CPU counted over exactly the wrk process's lifetime."""
    window = CpuWindow(service.roots())
    children0 = _children_cpu_s()
    window.start()
    proc, _ = run_wrk(service.base_url, lua, seconds, connections)
    spy = _py_spy(service.gateway.pid, profile, seconds) if profile else None
    out, _ = proc.communicate(timeout=seconds + 60)
    wrk_s = _children_cpu_s() - children0  # wrk is the only child reaped in the window (py-spy after it)
    cpu = window.stop(also_ours=wrk_s)
    if spy is not None:
        spy.wait(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{out}")
    requests, errors = parse_wrk(out)
    per = 1000.0 / max(requests, 1)
    service_s = cpu["gateway_cpu_s"] + cpu["triton_cpu_s"]
    return Result(
        scenario,
        code,
        requests,
        errors,
        cpu["wall_s"],
        requests / cpu["wall_s"],
        service_s * per,
        cpu["gateway_cpu_s"] * per,
        cpu["triton_cpu_s"] * per,
        wrk_s * per,
        cpu["others_cpu_share"],
        _latency_ms(out, "50"),
        _latency_ms(out, "99"),
        {"machine_busy_share": cpu["machine_busy_share"]},
    )


def parse_wrk(out: str) -> tuple[int, int]:
    """(completed requests, failed ones: non-2xx answers plus socket errors) from wrk's summary."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise RuntimeError(f"no summary in wrk's output:\n{out}")
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in sockets.groups()) if sockets else 0
    return int(done.group(1)), errors


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen:
    """Sample the gateway (all threads, native frames off) into collapsed stacks for `summarise`."""
    spy = Path(sys.executable).parent / "py-spy"
    cmd = [
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds) - 1)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--nonblocking",
        "--threads",
        "--output",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_lua(work: Path, scenario: str) -> Path:
    lua = work / f"{scenario}.lua"
    if scenario == "text":
        lua.write_text(_TEXT_LUA)
        return lua
    body = work / f"{scenario}.json"
    value = base64.b64encode(photo_jpeg()).decode()
    body.write_text(json.dumps({"image": {"type": "base64", "value": value}}))
    lua.write_text(_FILE_LUA.replace("{path}", str(body)).replace("{route}", "/clip/embed_image"))
    return lua


def run(
    code_roots: dict[str, Path],
    scenarios: list[str],
    seconds: float,
    connections: int,
    rounds: int,
    warmup_s: float,
    profile_dir: Path | None,
    env: dict[str, str],
    progress: Callable[[str], object] = print,
) -> list[Result]:
    """Each code root gets its own service; rounds alternate between them so drift hits both alike."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="serving-cost-") as tmp:
        services = {}
        try:
            for label, code_root in code_roots.items():
                work = Path(tmp) / label
                work.mkdir()
                progress(f"[{label}] exporting the tiny model and starting tritonserver + gateway from {code_root}")
                services[label] = Service(code_root, work, env).__enter__()
            luas = {s: write_lua(Path(tmp), s) for s in scenarios}
            for rnd in range(rounds):
                for label, service in services.items():
                    for s in scenarios:
                        if rnd == 0 and warmup_s > 0:
                            measure(service, s, luas[s], warmup_s, connections, label)
                        prof = profile_dir / f"{label}-{s}.txt" if profile_dir and rnd == 0 else None
                        r = measure(service, s, luas[s], seconds, connections, label, prof)
                        r.extra["round"] = rnd
                        results.append(r)
                        progress(format_row(r))
        finally:
            for service in services.values():
                service.__exit__()
    return results


def decode_floor_ms(size: int = 64, reps: int = 60) -> dict[str, float]:
    """CPU ms of the exact decode path alone for the benchmark JPEG, in this process (the image floor)."""
    import statistics

    from gateway.images.decode import Preprocess, decode_base64, image_to_tensor

    value, cfg = base64.b64encode(photo_jpeg()).decode(), Preprocess(size)

    def once() -> float:
        start = time.process_time()
        image_to_tensor(decode_base64(value), cfg, max_pixels=10**8)
        return (time.process_time() - start) * 1000

    once()
    return {"image_size": size, "decode_preprocess_ms": statistics.median(once() for _ in range(reps))}
