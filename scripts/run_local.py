#!/usr/bin/env python3
"""Embedded mode: export missing versions, start tritonserver, then the gateway; Ctrl-C stops both.

Settings come from the environment (see scripts/run.sh); every server listens on 127.0.0.1
unless GATEWAY_HOST/TRITON_HOST say otherwise.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from triton_clip.local import stop_process  # noqa: E402
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install  # noqa: E402

log = logging.getLogger("run")


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    versions = env("CLIP_VERSIONS", "ViT-B-16")
    repository = Path(env("MODEL_REPOSITORY", str(ROOT / "model_repository"))).resolve()
    export = [sys.executable, "-m", "triton_clip.cli", "--versions", versions,
              "--pretrained", env("CLIP_PRETRAINED", "openai"), "--repository", str(repository), "--target", "cpu"]
    log.info("exporting missing versions (%s) into %s", versions, repository)
    if subprocess.run(export, check=False).returncode != 0:
        log.error("export failed (see above). Offline? Set CLIP_PRETRAINED=none for random weights, "
                  "or CLIP_PRETRAINED=/path/to/checkpoint.")
        return 1
    install(DEFAULT_HOME)
    host = env("TRITON_HOST", "127.0.0.1")
    opts = TritonOptions(repository, host, int(env("TRITON_HTTP_PORT", "8000")), int(env("TRITON_GRPC_PORT", "8001")),
                         int(env("TRITON_METRICS_PORT", "8002")))
    triton = TritonProcess(opts)
    gateway: subprocess.Popen | None = None
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        log.info("starting tritonserver (pid %d), waiting until every model is READY", triton.pid)
        triton.wait_ready(600)
        gateway_env = {**os.environ, "GATEWAY_TRITON_URL": f"{'127.0.0.1' if host == '0.0.0.0' else host}:{opts.grpc_port}",
                       "CLIP_VERSION_ID": env("CLIP_VERSION_ID", versions.split(",")[0].strip())}
        port, gw_host = env("GATEWAY_PORT", "9001"), env("GATEWAY_HOST", "127.0.0.1")
        gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "gateway.main:create_app", "--factory",
                                    "--host", gw_host, "--port", port, "--no-access-log"], cwd=ROOT, env=gateway_env)
        log.info("gateway on http://%s:%s (docs at /docs); Ctrl-C stops both", gw_host, port)
        while gateway.poll() is None and triton.proc.poll() is None:
            try:
                gateway.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        return 1 if not stop["now"] else 0
    except KeyboardInterrupt:
        return 0
    finally:
        log.info("stopping gateway and tritonserver")
        stop_process(gateway)
        triton.stop()


if __name__ == "__main__":
    sys.exit(main())
