"""Triton + gateway under one CPU thread plan, started by us on free loopback ports, stopped by PID."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from triton_clip import threads
from triton_clip.launch import start_gateway
from triton_clip.local import free_port
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Variant:
    """A plan from triton_clip/threads.py, optionally with extra Triton environment (A/B runs)."""

    name: str
    plan: str | None  # None: serve the repository's configs as they are (e.g. the GPU script's)
    env: dict[str, str] = field(default_factory=dict)


VARIANTS = {
    "shared": Variant("shared", "shared"),
    "split": Variant("split", "split"),
    "passive": Variant("passive", "passive"),
    "legacy": Variant("legacy", "legacy"),
    "legacy+passive": Variant("legacy+passive", "legacy", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "shared+active": Variant("shared+active", "shared", {"OMP_WAIT_POLICY": "ACTIVE"}),
    "asis": Variant("asis", None),
}


class Stack:
    """One Triton (the repository rewritten to the variant's plan) and one gateway with the text cache off."""

    def __init__(
        self, variant: Variant, repository: Path, version: str, out: Path, cores: int, workers: int = 1
    ) -> None:
        self.variant, self.out = variant, out
        changed = threads.refresh_repository(repository, variant.plan, cores) if variant.plan else []
        install(DEFAULT_HOME)
        ports = {k: free_port() for k in ("http", "grpc", "metrics", "gateway")}
        opts = TritonOptions(repository, "127.0.0.1", ports["http"], ports["grpc"], ports["metrics"], env=variant.env)
        self.triton = TritonProcess(opts, log_file=out / f"tritonserver-{variant.name}.log")
        self.triton_env = {k: v for k, v in self.triton.env.items() if k.startswith(("OMP_", "GOMP_", "MKL_"))}
        self.triton_args = [a for a in self.triton.proc.args if a.startswith("--rate-limit")]
        self.rewritten = changed
        env = dict(
            os.environ,
            GATEWAY_TRITON_URL=f"127.0.0.1:{ports['grpc']}",
            CLIP_VERSION_ID=version,
            GATEWAY_MAX_INFLIGHT="512",
            GATEWAY_TEXT_CACHE_SIZE="0",
        )
        log_file = out / f"gateway-{variant.name}.log"
        self.gateway = start_gateway(
            env, port=ports["gateway"], workers=workers, log_file=log_file, ready_timeout_s=None
        )
        self.url = self.gateway.base_url

    def wait_ready(self) -> None:
        try:
            self.triton.wait_ready(600)
            self.gateway.wait_ready(180)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.gateway.stop(15.0)
        self.triton.stop()
