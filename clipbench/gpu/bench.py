"""The benchmark itself, phase by phase under one clock (clipbench/gpu/plan.py has the phases and budgets).

Runs in an interpreter that has our packages (the bootstrap's venv on the GPU host, the dev venv for the CPU dry
run). A failing phase is recorded and the next one still runs; the report is always written.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tarfile
import traceback
from dataclasses import asdict
from pathlib import Path

from clipbench.gpu.clock import Clock
from clipbench.gpu.plan import DEADLINE_S, Plan

ROOT = Path(__file__).resolve().parents[2]

EXPORT_THREADS = "2"  # per stub instance: the towers wait on the GPU, the gateway needs the cores


def export(plan: Plan, work: Path) -> dict[str, Path]:
    """Each version into its own repository (random init, fp16 on the GPU plan) with the exporter's own CLI."""
    from triton_clip.cli import main as export_main

    repos = {}
    for version in plan.versions:
        repos[version] = work / "repos" / version
        argv = ["--versions", version, "--pretrained", plan.pretrained, "--repository", str(repos[version])]
        argv += ["--target", "cpu", "--cpu-threads", EXPORT_THREADS, "--cpu-plan", "passive"]
        argv += ["--fp16"] if plan.fp16 else []
        argv += [a for c in plan.model_configs for a in ("--model-config", str(ROOT / c))]
        if export_main(argv):
            raise RuntimeError(f"export of {version} failed (see above)")
    return repos


def size_and_patch(plan: Plan, repo: Path) -> dict:
    """GPU sizing of the served version (triton_clip/sizing.py) for this GPU's memory, applied to its configs."""
    import open_clip
    import torch

    from clipbench.gpu import cuda
    from triton_clip import sizing
    from triton_clip.versions import model_names, open_clip_name

    version = plan.served_version
    counts = [
        sum(p.numel() for p in torch.jit.load(str(repo / m / "1" / "model.pt"), map_location="cpu").parameters())
        for m in model_names(version)
    ]
    shape = sizing.ModelShape.from_config(open_clip.get_model_config(open_clip_name(version)) or {}, *counts)
    cuda_gb = torch.cuda.get_device_properties(0).total_memory / 1e9 if plan.device == "cuda" else None
    memory_gb = cuda_gb or sizing.DEFAULT_GPU_MEMORY_GB
    sized = sizing.size_gpu(shape, plan.fp16, memory_gb, versions_sharing=1)
    changed = cuda.patch_repository(repo, sized, plan.device)
    return {
        "gpu_memory_gb": round(memory_gb, 1),
        "image": asdict(sized.image),
        "text": asdict(sized.text),
        "models": changed,
    }


def prepare(plan: Plan, work: Path, result: dict) -> dict[str, Path]:
    repos = export(plan, work)
    result["sizing"] = size_and_patch(plan, repos[plan.served_version])
    return repos


def parity(plan: Plan, timeout_s: float) -> dict:
    """clipbench/gpu_decode_parity.py in its own process (nvJPEG + torch resize vs the exact Pillow path)."""
    cmd = [sys.executable, "-m", "clipbench.gpu_decode_parity", "--model", plan.parity_model, "--device", plan.device]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(5.0, timeout_s))
        return {"rc": done.returncode, "output": (done.stdout + done.stderr[-3000:]).strip()}
    except subprocess.TimeoutExpired:
        return {"rc": None, "output": f"timed out after {timeout_s:.0f}s"}


def machine(plan: Plan, bootstrap_info: str) -> dict:
    import torch

    from clipbench.servers import machine_info

    info = {**machine_info(), "device": plan.device, "bootstrap": bootstrap_info}
    if plan.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = str(torch.version.cuda)
    return info


def _run_phase(clock: Clock, name: str, result: dict, fn):  # noqa: ANN001, ANN202 - phase body, its value
    with clock.phase(name):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - recorded, the next phase runs
            result["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            clock.log(f"{name} FAILED: {exc}\n{traceback.format_exc(limit=4)}")
            return None


def run(plan: Plan, out: Path, work: Path, bootstrap_s: float = 0.0, bootstrap_info: str = "") -> dict:
    from clipbench.gpu import report, serving, towers
    from clipbench.mixed.run import request_kinds
    from clipbench.stack import local_triton

    clock = Clock(plan.budgets, DEADLINE_S, already_s=bootstrap_s)
    clock.spent["bootstrap"] = round(bootstrap_s, 1)
    result: dict = {"plan": asdict(plan), "machine": machine(plan, bootstrap_info), "points": [], "errors": []}

    def record(p) -> None:  # noqa: ANN001 - closedloop.Point
        result["points"].append(asdict(p))
        clock.log(f"  {p.system} {p.op} {p.concurrency}: {p.items_per_s:.1f}/s p50 {p.p50_ms:.2f} p99 {p.p99_ms:.2f}")

    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    repos = _run_phase(clock, "export", result, lambda: prepare(plan, work, result))
    if repos:
        _run_phase(clock, "model_only", result, lambda: towers.measure(plan, repos, clock, record))
    result["parity"] = _run_phase(clock, "parity", result, lambda: parity(plan, clock.left()))
    with contextlib.ExitStack() as stack:
        served = repos[plan.served_version] if repos else None
        start = lambda: stack.enter_context(local_triton(served, logs / "tritonserver.log", clock.left()))  # noqa: E731
        triton = served and _run_phase(clock, "triton", result, start)
        if triton:
            kinds = request_kinds(work)
            points = lambda: serving.gateway_points(plan, triton, kinds, logs, clock, record)  # noqa: E731
            _run_phase(clock, "gateway", result, points)
            mixed = lambda: serving.mixed(plan, triton, kinds, logs, clock)  # noqa: E731
            result["mixed"] = _run_phase(clock, "mixed", result, mixed)
    result["phases"] = {"spent_s": clock.spent, "budget_s": plan.budgets, "skipped": clock.skipped}
    result["elapsed_s"] = round(clock.elapsed(), 1)
    _run_phase(clock, "report", result, lambda: report.write(out, result, plan))
    pack_logs(logs, out / "logs.tar.gz")
    clock.log(f"done in {clock.elapsed():.0f}s (deadline {DEADLINE_S}s): {out / report.MARKDOWN}")
    return result


def pack_logs(logs: Path, archive: Path) -> None:
    """One file for every server log ($OUT brings back at most 8 files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(logs.glob("*.log")):
            tar.add(path, arcname=path.name)
    archive.write_bytes(buf.getvalue())
