"""Session fixtures: one real tritonserver on a tiny random-init CLIP, one real gateway in front of it.

The tiny model is open_clip's own architecture code with a small config (tests/fixtures/clip-tiny.json),
exported exactly as production versions are; its reference is the eager open_clip model rebuilt from
the same seed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from triton_clip.launch import Gateway
from triton_clip.launch import start_gateway as launch_gateway
from triton_clip.local import free_port, stop_process, wait_http  # noqa: F401 - re-exported to tests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = "clip-tiny"


@pytest.fixture(scope="session")
def open_clip_tiny():
    """open_clip with the tiny config registered (the import is slow: once per session)."""
    import open_clip

    open_clip.add_model_config(FIXTURES / f"{TINY}.json")
    return open_clip


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory, open_clip_tiny) -> Path:
    from triton_clip.export import ExportRequest, export_version

    repo = tmp_path_factory.mktemp("repo") / "model_repository"
    export_version(ExportRequest(TINY, "none", "cpu", cpu_threads=1), repo)
    return repo


@pytest.fixture(scope="session")
def tiny_reference(open_clip_tiny):
    """Eager open_clip model with the same weights as the exported one (same seed)."""
    from triton_clip.export import ExportRequest
    from triton_clip.reference import load_model

    return load_model(ExportRequest(TINY, "none"))


@dataclass
class TritonEndpoints:
    process: object
    http: str
    grpc: str
    log_file: Path

    def url(self, path: str) -> str:
        return f"http://{self.http}{path}"


def run_triton(repository: Path, log_dir: Path, ready_s: float = 180) -> Iterator[TritonEndpoints]:
    """One real tritonserver on free loopback ports for a fixture's lifetime."""
    from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

    install(DEFAULT_HOME)
    opts = TritonOptions(repository, "127.0.0.1", free_port(), free_port(), free_port())
    log_file = log_dir / "tritonserver.log"
    server = TritonProcess(opts, log_file=log_file)
    try:
        server.wait_ready(ready_s)
        yield TritonEndpoints(server, f"127.0.0.1:{opts.http_port}", opts.grpc_url, log_file)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def triton(tiny_repository, tmp_path_factory) -> Iterator[TritonEndpoints]:
    yield from run_triton(tiny_repository, tmp_path_factory.mktemp("logs"))


def gateway_env(triton: TritonEndpoints, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GATEWAY_TRITON_URL": triton.grpc,
            "CLIP_VERSION_ID": TINY,
            "GATEWAY_MODEL_REFRESH_S": "1",
            "GATEWAY_LOG_JSON": "true",
            "GATEWAY_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


GatewayServer = Gateway  # base_url, proc, log_file


def start_gateway(
    triton: TritonEndpoints, log_file: Path, workers: int | None = None, access_log: bool = False, **extra_env: str
) -> Gateway:
    """The gateway as every launcher starts it (triton_clip/launch.py), in front of `triton`, ready."""
    return launch_gateway(gateway_env(triton, **extra_env), workers=workers, log_file=log_file, access_log=access_log)


@pytest.fixture(scope="session")
def gateway(triton, tmp_path_factory) -> Iterator[GatewayServer]:
    server = start_gateway(triton, tmp_path_factory.mktemp("gw") / "gateway.log")
    try:
        yield server
    finally:
        stop_process(server.proc)
