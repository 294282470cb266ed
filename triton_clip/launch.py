"""The one gateway launcher for local processes (run command, tests, benchmarks, soak).

It starts `python -m gateway.serve` (gateway/serve.py: uvicorn with GATEWAY_WORKERS processes, the
same entry point as the container image) in its own process group, so stopping it ends its workers.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from triton_clip.local import free_port, kill_group, start_group, stop_process, wait_http

ROOT = Path(__file__).resolve().parent.parent


def gateway_command(host: str, port: int, workers: int | None = None, access_log: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "gateway.serve", "--host", host, "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd if access_log else [*cmd, "--no-access-log"]


@dataclass
class Gateway:
    """A gateway process we started (the uvicorn master when workers > 1)."""

    proc: subprocess.Popen
    host: str
    port: int
    log_file: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{'127.0.0.1' if self.host == '0.0.0.0' else self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = 60.0, path: str = "/readiness") -> None:
        wait_http(f"{self.base_url}{path}", timeout_s, self.proc)

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_process(self.proc, timeout_s)

    def kill(self) -> None:
        kill_group(self.proc)


def start_gateway(
    env: dict[str, str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int | None = None,
    log_file: Path | None = None,
    access_log: bool = False,
    ready_timeout_s: float | None = 60.0,
    code_root: Path = ROOT,
) -> Gateway:
    """Start the gateway with `env` (GATEWAY_TRITON_URL, ...) and, unless told not to, wait for /readiness.

    `code_root`: the checkout whose `gateway` package runs (`python -m` imports from its working directory).
    """
    port = port or free_port()
    cmd = gateway_command(host, port, workers, access_log)
    proc = start_group(cmd, env=env, log_file=log_file, cwd=code_root)
    gateway = Gateway(proc, host, port, log_file)
    if ready_timeout_s is not None:
        try:
            gateway.wait_ready(ready_timeout_s)
        except Exception:
            gateway.stop()
            raise
    return gateway
