"""The one gateway launcher: `python -m gateway.serve --host 0.0.0.0 --port 9001`.

Used by the container image, the chart, the embedded run command, the tests and the benchmarks.
It runs `GATEWAY_WORKERS` uvicorn worker processes on one port (uvicorn's own supervisor restarts
a worker that dies). With more than one worker, Prometheus metrics go through prometheus_client's
multiprocess mode: every worker writes its samples to files in one directory (emptied here, before
any worker starts), and `/metrics` on any worker answers the sum over all of them.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

from gateway.settings import Settings

APP = "gateway.main:create_app"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(configured: Path | None) -> Path:
    """An empty directory for the workers' metric files (stale files from a previous run would add up)."""
    folder = configured or Path(tempfile.gettempdir()) / f"clip-gateway-metrics-{os.getpid()}"
    if folder.exists():
        for entry in folder.iterdir():
            if entry.suffix == ".db":
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cores() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's limit)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the CLIP gateway (uvicorn, GATEWAY_WORKERS processes).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--workers", type=int, default=None, help="overrides GATEWAY_WORKERS (0 = one per core)")
    parser.add_argument("--no-access-log", action="store_true", help="uvicorn's per-request access log off")
    args = parser.parse_args(argv)
    settings = Settings()
    workers = args.workers if args.workers is not None else settings.workers
    workers = workers or cores()
    folder: Path | None = None
    if workers > 1:
        folder = prepare_metrics_dir(settings.metrics_dir)
        os.environ[MULTIPROC_ENV] = str(folder)  # inherited by the spawned workers
    try:
        uvicorn.run(
            APP, factory=True, host=args.host, port=args.port, workers=workers, access_log=not args.no_access_log
        )
    finally:
        if folder is not None and settings.metrics_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
