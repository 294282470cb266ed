"""The CPU thread plan (triton_clip/threads.py) as shipped: what scripts/export.py writes, what the
embedded Triton runs with (process environment, flags, the configs Triton itself reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_clip import threads

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "tests" / "fixtures" / "clip-tiny.json"
MODELS = ("clip-clip-tiny-image", "clip-clip-tiny-text")


def export(repo: Path, **env: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "export.py"),
        "--repository",
        str(repo),
        "--versions",
        "clip-tiny",
        "--model-config",
        str(TINY_CONFIG),
        "--pretrained",
        "none",
        "--cpu-threads",
        "2",
    ]
    clean = {k: v for k, v in os.environ.items() if k != threads.PLAN_ENV}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**clean, **env})


def config(repo: Path, name: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_export_writes_the_plan_and_switches_it_without_reexport(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = export(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in MODELS:
        cfg = config(repo, name)
        (group,) = cfg.instance_group
        assert group.count == 2 and not group.rate_limiter.resources  # default `split` on 2 cores: 2 x 1 thread
        params = {k: v.string_value for k, v in cfg.parameters.items()}
        assert (params["cpu_plan"], params["num_threads"], params["interop_threads"]) == ("split", "1", "1")
    weights = (repo / MODELS[0] / "1" / "model.pt").stat().st_mtime_ns
    again = export(repo, **{threads.PLAN_ENV: "shared"})
    assert again.returncode == 0 and "CPU plan set to shared" in " ".join(again.stdout.split()), again.stdout
    assert (repo / MODELS[0] / "1" / "model.pt").stat().st_mtime_ns == weights  # configs only
    for name, tower in zip(MODELS, ("image", "text")):
        (group,) = config(repo, name).instance_group
        assert [(r.name, r.count) for r in group.rate_limiter.resources] == [(threads.RESOURCE, 2)]
        assert group.rate_limiter.priority == threads.PRIORITY[tower]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_embedded_triton_runs_with_the_plan(triton) -> None:
    pid = triton.process.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert not any(arg.startswith(b"--rate-limit") for arg in cmdline)  # the default plan needs no limiter
    stubs = _children(pid)
    assert len(stubs) >= len(MODELS)  # one Python-backend stub per model instance
    for process in (pid, *stubs):
        assert _environ(process).get("OMP_WAIT_POLICY") == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    for name in MODELS:
        with urllib.request.urlopen(triton.url(f"/v2/models/{name}/config"), timeout=10) as response:
            served = json.load(response)
        assert served["instance_group"][0]["count"] == 1
        assert served["parameters"]["cpu_plan"]["string_value"] == threads.DEFAULT_PLAN
        assert served["parameters"]["interop_threads"]["string_value"] == "1"
