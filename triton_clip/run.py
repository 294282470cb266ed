"""The run command (`make run`): export missing versions, then Triton and the gateway, supervised.

    python -m triton_clip.run [--no-export]

Settings come from the environment (see scripts/run.sh and the README): CLIP_VERSIONS, CLIP_PRETRAINED,
MODEL_REPOSITORY, TRITON_HOST/TRITON_*_PORT, GATEWAY_HOST/GATEWAY_PORT/GATEWAY_WORKERS, and the
supervision knobs RUN_MAX_FAILURES, RUN_BACKOFF_MAX_S, RUN_HANG_TIMEOUT_S. Ctrl-C (SIGINT) or SIGTERM
stops everything, Triton's stubs included, within a few seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from triton_clip.launch import ROOT, Gateway, start_gateway
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install
from triton_clip.supervise import Child, Policy, Supervisor

log = logging.getLogger("run")


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def export(versions: str, repository: Path) -> bool:
    cmd = [
        sys.executable,
        "-m",
        "triton_clip.cli",
        "--versions",
        versions,
        "--pretrained",
        env("CLIP_PRETRAINED", "openai"),
        "--repository",
        str(repository),
        "--target",
        "cpu",
    ]
    log.info("exporting missing versions (%s) into %s", versions, repository)
    if subprocess.run(cmd, check=False, cwd=ROOT).returncode == 0:
        return True
    log.error(
        "export failed (see above). Offline? Set CLIP_PRETRAINED=none for random weights, "
        "or CLIP_PRETRAINED=/path/to/checkpoint."
    )
    return False


def triton_options(repository: Path) -> TritonOptions:
    defaults = TritonOptions(repository)  # the one place Triton's default ports are written
    return TritonOptions(
        repository,
        env("TRITON_HOST", defaults.host),
        int(env("TRITON_HTTP_PORT", str(defaults.http_port))),
        int(env("TRITON_GRPC_PORT", str(defaults.grpc_port))),
        int(env("TRITON_METRICS_PORT", str(defaults.metrics_port))),
    )


def policy() -> Policy:
    return Policy(
        max_failures=int(env("RUN_MAX_FAILURES", "5")),
        backoff_max_s=float(env("RUN_BACKOFF_MAX_S", "30")),
        hang_timeout_s=float(env("RUN_HANG_TIMEOUT_S", "30")),
    )


def children(opts: TritonOptions, versions: str, log_dir: Path) -> list[Child]:
    log_dir.mkdir(parents=True, exist_ok=True)
    triton_log = log_dir / "tritonserver.log"
    gateway_env = {
        **os.environ,
        "GATEWAY_TRITON_URL": opts.grpc_url,
        "CLIP_VERSION_ID": env("CLIP_VERSION_ID", versions.split(",")[0].strip()),
    }
    host, port = env("GATEWAY_HOST", "127.0.0.1"), int(env("GATEWAY_PORT", "9001"))

    def start_triton() -> TritonProcess:
        return TritonProcess(opts, log_file=triton_log)

    def start_gw() -> Gateway:
        return start_gateway(gateway_env, host=host, port=port, ready_timeout_s=None)

    def triton_tail(handle: TritonProcess) -> str:
        return handle.tail(10, errors_only=True)

    return [
        Child("tritonserver", start_triton, opts.ready_url, triton_tail),
        Child("gateway", start_gw, f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/healthz"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-export", action="store_true", help="serve MODEL_REPOSITORY as it is")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    versions = env("CLIP_VERSIONS", "ViT-B-16")
    repository = Path(env("MODEL_REPOSITORY", str(ROOT / "model_repository"))).resolve()
    if not args.no_export and not export(versions, repository):
        return 1
    install(DEFAULT_HOME)
    opts = triton_options(repository)
    log_dir = Path(env("RUN_LOG_DIR", str(ROOT / ".run")))
    supervisor = Supervisor(children(opts, versions, log_dir), policy())
    supervisor.install_signal_handlers()
    log.info(
        "tritonserver log: %s; the gateway will listen on %s:%s (docs at /docs); Ctrl-C stops both",
        log_dir / "tritonserver.log",
        env("GATEWAY_HOST", "127.0.0.1"),
        env("GATEWAY_PORT", "9001"),
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
