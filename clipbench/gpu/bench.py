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
EXPORT_MIN_S = 30.0  # what exporting one more ViT-B version may take on 16 cores


def export_one(plan: Plan, version: str, repo: Path) -> None:
    """One version into its own repository (random init, fp16 on the GPU plan) with the exporter's own CLI."""
    from triton_clip.cli import main as export_main

    argv = ["--versions", version, "--pretrained", plan.pretrained, "--repository", str(repo)]
    argv += ["--target", "cpu", "--cpu-threads", EXPORT_THREADS, "--cpu-plan", "passive"]
    argv += ["--fp16"] if plan.fp16 else []
    argv += [a for c in plan.model_configs for a in ("--model-config", str(ROOT / c))]
    if export_main(argv):
        raise RuntimeError(f"export of {version} failed (see above)")


def export(plan: Plan, work: Path, clock: Clock, errors: list[str]) -> dict[str, Path]:
    """The served version first (everything after needs it); another one that fails or would not fit is left out."""
    repos = {}
    for version in plan.versions:
        repo = work / "repos" / version
        if version == plan.served_version:
            export_one(plan, version, repo)
        elif not clock.allows(EXPORT_MIN_S, f"export {version}"):
            continue
        else:
            try:
                export_one(plan, version, repo)
            except Exception as exc:  # noqa: BLE001 - the served version is what the other phases need
                errors.append(f"export {version}: {type(exc).__name__}: {exc}")
                continue
        repos[version] = repo
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


def prepare(plan: Plan, work: Path, clock: Clock, result: dict) -> dict[str, Path]:
    repos = export(plan, work, clock, result["errors"])
    result["sizing"] = size_and_patch(plan, repos[plan.served_version])
    return repos


def parity(plan: Plan, clock: Clock) -> dict:
    """clipbench/gpu_decode_parity.py in its own process (nvJPEG + torch resize vs the exact Pillow path)."""
    cmd = [sys.executable, "-m", "clipbench.gpu_decode_parity", "--model", plan.parity_model, "--device", plan.device]
    timeout_s = max(5.0, clock.left())
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        return {"rc": done.returncode, "output": (done.stdout + done.stderr[-3000:]).strip()}
    except subprocess.TimeoutExpired:
        return {"rc": None, "output": f"timed out after {timeout_s:.0f}s"}


def machine(plan: Plan, bootstrap_info: str) -> dict:
    import torch

    from clipbench.servers import machine_info

    info = {**machine_info(), "device": plan.device, "bootstrap": bootstrap_info}
    if plan.device == "cuda":
        try:
            info["gpu"], info["cuda"] = torch.cuda.get_device_name(0), str(torch.version.cuda)
        except Exception as exc:  # noqa: BLE001 - no usable GPU: every phase will say so, the report is written
            info["gpu"] = f"none usable: {type(exc).__name__}: {exc}"
    return info


class Run:
    """One benchmark run: the clock, the result being filled, where it goes; the report is rewritten after every
    phase, so a run stopped from outside still leaves what it measured."""

    def __init__(self, plan: Plan, out: Path, work: Path, bootstrap_s: float, bootstrap_info: str) -> None:
        self.plan, self.out, self.work, self.logs = plan, out, work, work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.clock = Clock(plan.budgets, DEADLINE_S, already_s=bootstrap_s)
        self.clock.spent["bootstrap"] = round(bootstrap_s, 1)
        self.result: dict = {"plan": asdict(plan), "machine": machine(plan, bootstrap_info), "points": [], "errors": []}

    def record(self, p) -> None:  # noqa: ANN001 - closedloop.Point
        self.result["points"].append(asdict(p))
        self.clock.log(
            f"  {p.system} {p.op} {p.concurrency}: {p.items_per_s:.1f}/s p50 {p.p50_ms:.2f} p99 {p.p99_ms:.2f} ms"
        )

    def phase(self, name: str, fn, *args):  # noqa: ANN001, ANN202 - a phase body and its value
        value = None
        with self.clock.phase(name):
            try:
                value = fn(*args)
            except Exception as exc:  # noqa: BLE001 - recorded, the next phase runs
                self.result["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
                self.clock.log(f"{name} FAILED: {exc}\n{traceback.format_exc(limit=4)}")
        self.save(with_plot=name == "report")
        return value

    def save(self, with_plot: bool) -> None:
        from clipbench.gpu import report

        phases = {"spent_s": self.clock.spent, "budget_s": self.plan.budgets, "skipped": self.clock.skipped}
        self.result.update(phases=phases, elapsed_s=round(self.clock.elapsed(), 1))
        report.write(self.out, self.result, self.plan, with_plot=with_plot)
        pack_logs(self.logs, self.out / "logs.tar.gz")

    def serve(self, served: Path) -> None:
        """Triton on the served version, then the gateway and mixed-traffic phases against it."""
        from clipbench.gpu import serving
        from clipbench.mixed.run import request_kinds
        from clipbench.stack import local_triton

        plan, clock = self.plan, self.clock
        with contextlib.ExitStack() as stack:
            log = self.logs / "tritonserver.log"
            triton = self.phase("triton", lambda: stack.enter_context(local_triton(served, log, clock.left())))
            if triton:
                kinds = request_kinds(self.work)
                errors = self.result["errors"]
                self.phase(
                    "gateway", serving.gateway_points, plan, triton, kinds, self.logs, clock, self.record, errors
                )
                self.result["mixed"] = self.phase("mixed", serving.mixed, plan, triton, kinds, self.logs, clock)


def run(plan: Plan, out: Path, work: Path, bootstrap_s: float = 0.0, bootstrap_info: str = "") -> dict:
    from clipbench.gpu import towers

    r = Run(plan, out, work, bootstrap_s, bootstrap_info)
    repos = r.phase("export", prepare, plan, work, r.clock, r.result)
    if repos:
        r.phase("model_only", towers.measure, plan, repos, r.clock, r.record, r.result["errors"])
    r.result["parity"] = r.phase("parity", parity, plan, r.clock)
    if repos:
        r.serve(repos[plan.served_version])
    r.phase("report", lambda: None)
    r.clock.log(f"done in {r.clock.elapsed():.0f}s (deadline {DEADLINE_S}s): {out}")
    return r.result


def pack_logs(logs: Path, archive: Path) -> None:
    """One file for every server log ($OUT brings back at most 8 files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(logs.glob("*.log")):
            tar.add(path, arcname=path.name)
    archive.write_bytes(buf.getvalue())
