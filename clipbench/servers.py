"""The three servers of the side-by-side benchmark: tritonserver, the gateway, the naive baseline.

All listen on 127.0.0.1 on free ports, are children of the benchmark process (so its process tree is
"ours" in the CPU accounting), log into the results folder and are stopped by PID.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from triton_clip.local import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parent.parent


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL if still there after 15 s (the naive server finishes its request first)."""
    stop_process(proc, 15.0)


def _log(path: Path):  # noqa: ANN202 - a binary file owned by the child's lifetime
    return open(path, "ab")  # noqa: SIM115


@dataclass
class Servers:
    """Started by `start()` (which sets the three URLs), stopped by `stop()`."""

    version: str
    repo: Path
    out: Path
    gateway_env: dict[str, str] = field(default_factory=dict)
    model_configs: list[Path] = field(default_factory=list)
    gw_url: str = ""
    naive_url: str = ""
    grpc_url: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)
    triton: object = None

    def start(self) -> None:
        from triton_clip.launch import start_gateway
        from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

        install(DEFAULT_HOME)
        opts = TritonOptions(self.repo, "127.0.0.1", free_port(), free_port(), free_port())
        self.triton = TritonProcess(opts, log_file=self.out / "tritonserver.log")
        self.grpc_url = opts.grpc_url
        env = dict(
            os.environ,
            GATEWAY_TRITON_URL=self.grpc_url,
            CLIP_VERSION_ID=self.version,
            GATEWAY_MAX_INFLIGHT="512",
            **self.gateway_env,
        )
        gateway = start_gateway(env, log_file=self.out / "gateway.log", ready_timeout_s=None)
        self.gw_url = gateway.base_url
        naive_port = free_port()
        configs = [a for c in self.model_configs for a in ("--model-config", str(c))]
        naive = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clipbench.naive",
                "--version",
                self.version,
                "--pretrained",
                "none",
                "--port",
                str(naive_port),
                *configs,
            ],
            cwd=ROOT,
            stdout=_log(self.out / "naive.log"),
            stderr=subprocess.STDOUT,
        )
        self.naive_url = f"http://127.0.0.1:{naive_port}"
        self.procs = [gateway.proc, naive]
        self.triton.wait_ready(300)
        gateway.wait_ready(120)
        wait_http(f"{self.naive_url}/healthz", 180, naive)

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)
        if self.triton is not None:
            self.triton.stop()


def machine_info() -> dict[str, str]:
    import torch

    from triton_clip.server import PYTRITON_VERSION

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = next((ln.split()[1] for ln in f if ln.startswith("MemTotal")), "?")
    return {
        "cpu": cpu,
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "mem": mem + " kB",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "triton": f"tritonserver 2.51.0 (nvidia-pytriton {PYTRITON_VERSION})",
        "kernel": platform.release(),
    }
