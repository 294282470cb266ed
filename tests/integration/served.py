"""A real tritonserver + gateway on a repository a test exported itself (not the session's tiny one)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import ROOT, GatewayServer, TritonEndpoints, free_port, start_gateway, stop_process


def export(
    repo: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """The exporter as a user runs it (a subprocess, its own environment)."""
    cmd = [sys.executable, "-m", "triton_clip.cli", "--repository", str(repo), *args]
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False
    )


@contextmanager
def serving(repo: Path, logs: Path, default_version: str) -> Iterator[tuple[TritonEndpoints, GatewayServer]]:
    """Start Triton on `repo` and a gateway in front of it; both stopped (by PID) on exit."""
    from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

    install(DEFAULT_HOME)
    logs.mkdir(parents=True, exist_ok=True)
    opts = TritonOptions(repo, "127.0.0.1", free_port(), free_port(), free_port())
    server = TritonProcess(opts, log_file=logs / "tritonserver.log")
    gateway = None
    try:
        server.wait_ready(300)
        triton = TritonEndpoints(
            server, f"127.0.0.1:{opts.http_port}", f"127.0.0.1:{opts.grpc_port}", logs / "tritonserver.log"
        )
        gateway = start_gateway(triton, logs / "gateway.log", CLIP_VERSION_ID=default_version)
        yield triton, gateway
    finally:
        if gateway is not None:
            stop_process(gateway.proc)
        server.stop()


def embed(gateway: GatewayServer, route: str, payload: dict) -> np.ndarray:
    response = httpx.post(f"{gateway.base_url}/clip/{route}", json=payload, timeout=120)
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["embeddings"], dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
