"""A local Triton (127.0.0.1, free ports) and the gateway environment pointing at it, for benchmarks and the soak."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from triton_clip.local import free_port
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install


@contextmanager
def local_triton(repo: Path, log_file: Path, ready_timeout_s: float = 300.0) -> Iterator[TritonProcess]:
    """tritonserver on `repo`, ready on exit of the `with` head, stopped (whole group) at its end."""
    install(DEFAULT_HOME)
    server = TritonProcess(
        TritonOptions(repo.resolve(), "127.0.0.1", free_port(), free_port(), free_port()), log_file=log_file
    )
    try:
        server.wait_ready(ready_timeout_s)
        yield server
    finally:
        server.stop()


def gateway_env(base: dict[str, str], triton: TritonProcess, version: str, **overrides: str) -> dict[str, str]:
    """The gateway's settings for a benchmark: this Triton, this version, quiet logs, a generous in-flight cap."""
    return {
        **base,
        "GATEWAY_TRITON_URL": triton.opts.grpc_url,
        "CLIP_VERSION_ID": version,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_MAX_INFLIGHT": "512",
        **overrides,
    }
