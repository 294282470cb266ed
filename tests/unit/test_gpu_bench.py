"""The GPU bench (clipbench/gpu/) without a GPU: its plan fits 8 minutes, its bundle holds what the host lacks and
is size-checked, its CUDA configs say what the contract says, its command line parses. No network, no GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format

from clipbench.gpu import bootstrap, bundle, cli, cuda
from clipbench.gpu.plan import CPU_PLAN, DEADLINE_S, GPU_PLAN, PHASES, STOP_S, estimate_s, plan_for
from gateway.contract import (
    ENCODED_INPUT,
    EOT_ID,
    SOT_ID,
    IMAGE_INPUT,
    IMAGE_OUTPUT,
    TEXT_BUCKETS,
    TEXT_INPUT,
    TEXT_OUTPUT,
    Param,
    encoded_model_names,
    format_buckets,
    model_names,
)
from gateway.version_info import versions_from_configs
from triton_clip import sizing, threads
from triton_clip.preprocess_model import write_encoded_models
from triton_clip.repository import TowerSpec, config_pbtxt
from triton_clip.threads import model_threads

ROOT = Path(__file__).resolve().parents[2]
VERSION = "v1"


# --- plan and budget ----------------------------------------------------------------------------------------------
def test_gpu_plan_fits_eight_minutes() -> None:
    assert DEADLINE_S == 480
    assert set(GPU_PLAN.budgets) == set(PHASES)
    assert GPU_PLAN.total_budget_s + STOP_S <= DEADLINE_S
    need = estimate_s(GPU_PLAN)
    for phase, seconds in need.items():  # the points themselves fit their phase's budget
        assert seconds <= GPU_PLAN.budgets[phase], (phase, seconds)


def test_gpu_plan_measures_what_issue_13_asks() -> None:
    assert GPU_PLAN.device == "cuda" and GPU_PLAN.fp16
    assert GPU_PLAN.versions == ("ViT-B-32", "ViT-B-16") and GPU_PLAN.text_towers
    assert min(GPU_PLAN.batches) == 1 and max(GPU_PLAN.batches) == 256
    assert {g.transport for g in GPU_PLAN.gateways} == {"tensor", "encoded"}
    assert {g.workers for g in GPU_PLAN.gateways} == {1, 8}  # 1 vs many gateway workers
    levels = {c for g in GPU_PLAN.gateways for c in g.image_levels}
    assert min(levels) == 1 and max(levels) == 256
    assert GPU_PLAN.mixed_flood and GPU_PLAN.mixed_concurrency


def test_dry_run_plan_is_tiny_and_overridable() -> None:
    assert CPU_PLAN.device == "cpu" and not CPU_PLAN.fp16 and CPU_PLAN.versions == ("clip-tiny",)
    assert all((ROOT / c).is_file() for c in CPU_PLAN.model_configs)
    assert set(CPU_PLAN.budgets) == set(PHASES) and CPU_PLAN.total_budget_s <= DEADLINE_S * 2
    plan = plan_for("cuda", point_s=3, workers=12)
    assert plan.point_s == plan.mixed_point_s == 3
    assert {g.workers for g in plan.gateways} == {1, 12}
    assert plan_for("cpu") == CPU_PLAN and plan_for("cuda") == GPU_PLAN


# --- bundle -------------------------------------------------------------------------------------------------------
def test_bundle_wheels_are_pinned_from_requirements() -> None:
    pins = bundle.wheel_pins()
    gateway_txt = (ROOT / "requirements" / "gateway.txt").read_text()
    for name in bundle.FROM_REQUIREMENTS:
        assert f"=={pins[name]}" in next(line for line in gateway_txt.splitlines() if line.lower().startswith(name))
    assert "open-clip-torch" in pins and "tritonclient" in pins and "grpcio" in pins
    host = {n.lower() for n in bundle.HOST_PACKAGES}
    assert not host & set(pins), "a package is both carried and expected on the host"
    assert {"torch", "torchvision", "numpy", "timm"} <= host


def fake_triton_home(home: Path) -> Path:
    server = home / "pytriton" / "tritonserver"
    for rel in (
        "nvidia_pytriton.libs/libtritonserver-1.so",
        "nvidia_pytriton.libs/libpython3-2.13.so.1.0",
        "pytriton/tritonserver/bin/tritonserver",
        "pytriton/tritonserver/caches/local/libtritoncache_local.so",
        "backends/python/libtriton_python.so",
        "backends/python/triton_python_backend_utils.py",
        "backends/python/triton_python_backend_stub",  # the dev machine's own (3.11): not carried
        ".installed-0.7.0",
        *(f"pytriton/tritonserver/python_backend_stubs/{v}/triton_python_backend_stub" for v in ("3.11", "3.12")),
    ):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(rel)
    return server


def test_triton_archive_holds_the_server_and_the_312_stub(tmp_path: Path) -> None:
    fake_triton_home(tmp_path)
    members = dict((name, src) for src, name in bundle.triton_members(tmp_path))
    assert members["backends/python/triton_python_backend_stub"].parent.name == "3.12"
    assert "pytriton/tritonserver/bin/tritonserver" in members and ".installed-0.7.0" in members
    assert "nvidia_pytriton.libs/libtritonserver-1.so" in members
    assert not any("libpython3" in n or "python_backend_stubs" in n for n in members)


def test_missing_312_stub_is_an_error(tmp_path: Path) -> None:
    fake_triton_home(tmp_path)
    (tmp_path / "pytriton/tritonserver/python_backend_stubs/3.12/triton_python_backend_stub").unlink()
    with pytest.raises(RuntimeError, match="3.12"):
        bundle.triton_members(tmp_path)


def test_size_check_and_manifest(tmp_path: Path) -> None:
    mib = 1024 * 1024
    assert "limit 64 MiB" in bundle.check_size(3 * mib, 60 * mib)
    with pytest.raises(RuntimeError, match="over the 64 MiB"):
        bundle.check_size(5 * mib, 60 * mib)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "a-1-py3-none-any.whl").write_bytes(b"x" * 10)
    (tmp_path / bundle.TRITON_ARCHIVE).write_bytes(b"y" * 5)
    data = bundle.manifest(tmp_path, {"a": "1"})
    assert data["files"] == {bundle.TRITON_ARCHIVE: 5, "wheels/a-1-py3-none-any.whl": 10}
    assert data["python"] == "3.12" and data["wheels"] == {"a": "1"} and "torch" in data["host_packages"]
    assert bundle.bundle_bytes(tmp_path) == 15
    assert bundle.tree_bytes() < bundle.LIMIT_BYTES  # the working tree alone travels


def test_gitignore_keeps_the_bundle_out() -> None:
    assert "/.gpubundle/" in (ROOT / ".gitignore").read_text().splitlines()


# --- bootstrap ----------------------------------------------------------------------------------------------------
def test_venv_sees_the_bundle_site_then_the_host(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    (site_dir / "bundled_probe").mkdir(parents=True)
    (site_dir / "bundled_probe" / "__init__.py").write_text("X = 1\n")
    python = bootstrap.make_venv(tmp_path / "venv", site_dir)
    code = "import bundled_probe, pytest, sys; print(sys.prefix)"  # pytest: from the host interpreter's site
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tmp_path / "venv")


def test_wrk_wrapper_sets_only_its_library_path(tmp_path: Path) -> None:
    bin_dir = bootstrap.wrk_wrapper(tmp_path / "tools", tmp_path / "bin")
    text = (bin_dir / "wrk").read_text()
    assert text.startswith("#!/bin/sh\n") and f"{tmp_path / 'tools'}/lib" in text and "exec" in text


# --- CUDA configs -------------------------------------------------------------------------------------------------
@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A CPU-target repository as the exporter writes it (towers, preprocessing model, ensemble), no torch."""
    image_params = {
        Param.CLIP_VERSION: VERSION,
        Param.TOWER: "image",
        Param.IMAGE_SIZE: "32",
        Param.EMBED_DIM: "8",
        Param.RESIZE_MODE: "shortest",
        Param.INTERPOLATION: "bicubic",
        Param.FILL_COLOR: "0",
    }
    text_params = {**image_params, Param.TOWER: "text", Param.CONTEXT_LENGTH: "77", Param.EOT_ID: str(EOT_ID)}
    text_params[Param.TEXT_BUCKETS] = format_buckets(TEXT_BUCKETS)
    image_name, text_name = model_names(VERSION)
    image = TowerSpec(image_name, "image", "cpu", [3, 32, 32], 8, image_params, threads=model_threads("image", 2))
    text = TowerSpec(
        text_name, "text", "cpu", [-1], 8, text_params, [[b] for b in TEXT_BUCKETS], threads=model_threads("text", 2)
    )
    for spec in (image, text):
        (tmp_path / spec.name).mkdir()
        (tmp_path / spec.name / "config.pbtxt").write_text(config_pbtxt(spec))
    write_encoded_models(
        tmp_path, VERSION, "cpu", image_name, image_params, 8, image.batching, model_threads("preprocess", 2)
    )
    return tmp_path


SIZED = sizing.size_gpu(sizing.ModelShape(224, "vit", 768, 32, 77, 512, 88_000_000, 63_000_000), True, 141.0)


def test_cuda_patch_follows_sizing_and_contract(exported: Path) -> None:
    image_name, text_name = model_names(VERSION)
    preprocess, ensemble = encoded_model_names(VERSION)
    assert sorted(cuda.patch_repository(exported, SIZED)) == sorted([image_name, text_name, preprocess, ensemble])
    cfg = {p.parent.name: cuda.load(p) for p in exported.glob("*/config.pbtxt")}
    image, text = cfg[image_name], cfg[text_name]
    assert (image.input[0].name, image.output[0].name) == (IMAGE_INPUT, IMAGE_OUTPUT)
    assert (text.input[0].name, text.output[0].name) == (TEXT_INPUT, TEXT_OUTPUT)
    for c, b, ladder in ((image, SIZED.image, SIZED.image_warmup), (text, SIZED.text, SIZED.text_warmup)):
        assert c.backend == "python" and c.parameters[cuda.RUNNER_DEVICE].string_value == "cuda"
        assert c.max_batch_size == b.max_batch_size and c.instance_group[0].count == b.instances
        assert c.dynamic_batching.max_queue_delay_microseconds == b.queue_delay_us
        assert c.dynamic_batching.default_queue_policy.max_queue_size == b.max_queue_size
        assert sorted({w.batch_size for w in c.model_warmup}) == ladder
    assert len(text.model_warmup) == len(SIZED.text_warmup) * len(TEXT_BUCKETS)  # every bucket, every batch
    assert cfg[preprocess].parameters[Param.DECODE_DEVICE].string_value == "cuda"
    assert cfg[preprocess].instance_group[0].kind == cfg[preprocess].instance_group[0].KIND_GPU
    assert image.instance_group[0].kind == image.instance_group[0].KIND_CPU
    assert cfg[preprocess].input[0].name == ENCODED_INPUT
    assert cfg[ensemble].max_batch_size == SIZED.image.max_batch_size


def test_patched_configs_still_read_by_gateway_and_tools(exported: Path) -> None:
    cuda.patch_repository(exported, SIZED)
    paths = exported.glob("*/config.pbtxt")
    configs = [json_format.MessageToDict(cuda.load(p), preserving_proto_field_name=True) for p in paths]
    info = versions_from_configs(configs)[VERSION]
    assert info.encoded_model == encoded_model_names(VERSION)[1] and info.embed_dim == 8
    assert set(threads.repository_plans(exported).values()) == {threads.DEFAULT_PLAN}
    path = exported / model_names(VERSION)[0] / "config.pbtxt"
    patched = path.read_text()
    assert cuda.dump(cuda.load(path)) == patched  # parses back to itself
    assert 'parameters { key: "device" value { string_value: "cuda" } }' in patched.splitlines()


def test_runner_reads_the_device_parameter() -> None:
    runner = (ROOT / "triton_clip" / "runner.py").read_text()
    assert f'params.get("{cuda.RUNNER_DEVICE}", "cpu")' in runner


# --- command line -------------------------------------------------------------------------------------------------
def test_dry_run_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    args = cli.parse_args(["run", "--device", "cpu", "--point-seconds", "0.5"])
    assert (args.device, args.out, args.bundle, args.point_seconds) == ("cpu", tmp_path / "out", None, 0.5)
    again = cli.parse_args(cli._bench_argv(args, 12.5, "python 3.12"))
    assert again.command == "bench" and again.device == "cpu" and again.out == args.out
    assert again.bootstrap_seconds == 12.5 and again.bootstrap_info == "python 3.12"
    gpu = cli.parse_args(["run", "--bundle", ".gpubundle"])
    assert gpu.device == "cuda" and gpu.bundle == Path(".gpubundle")


def test_cli_imports_without_heavy_packages() -> None:
    code = (
        "import sys, clipbench.gpu.cli, clipbench.gpu.bootstrap, clipbench.gpu.plan\n"
        "heavy = {'torch', 'numpy', 'tritonclient', 'fastapi', 'open_clip'} & set(sys.modules)\n"
        "print(json.dumps(sorted(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


# --- clock and report ---------------------------------------------------------------------------------------------
def test_clock_skips_what_its_phase_cannot_fit(capsys: pytest.CaptureFixture[str]) -> None:
    from clipbench.gpu.clock import Clock

    clock = Clock({"gateway": 10.0}, deadline_s=480, already_s=20.0)
    with clock.phase("gateway"):
        assert clock.allows(5, "point a") and not clock.allows(11, "point b")
        assert 0 < clock.left() <= 10
    assert clock.skipped == ["gateway: point b (budget)"] and "gateway" in clock.spent
    late = Clock({"mixed": 100.0}, deadline_s=480, already_s=470.0)  # the deadline wins over the budget
    with late.phase("mixed"):
        assert not late.allows(20, "scenario")
    assert "[gpu-bench" in capsys.readouterr().out


def test_report_renders_a_partial_run(tmp_path: Path) -> None:
    from clipbench.closedloop import Point
    from clipbench.gpu import report

    point = Point("gateway", "image 8w encoded", 32, items_per_s=100.0, p50_ms=5.0, p99_ms=9.0)
    point.extra = {"served_transport": "encoded"}
    result = {
        "machine": {"gpu": "H200", "cpu": "x", "nproc": "16"},
        "points": [vars(Point("model-only", "ViT-B-32 image", 256, items_per_s=9000.0)), vars(point)],
        "errors": ["mixed: RuntimeError: wrk gave no summary"],
        "phases": {"spent_s": {"export": 50.0}, "budget_s": GPU_PLAN.budgets, "skipped": ["gateway: x (budget)"]},
        "elapsed_s": 300.0,
    }
    report.write(tmp_path, result, GPU_PLAN, with_plot=False)
    text = (tmp_path / report.MARKDOWN).read_text()
    assert "| ViT-B-32 image | 256 | 9000.0 |" in text and "| image 8w encoded (encoded) | 32 | 100.0 |" in text
    assert "Not measured" in text and "wrk gave no summary" in text and "gateway: x (budget)" in text
    assert json.loads((tmp_path / report.JSON).read_text())["elapsed_s"] == 300.0


def test_model_only_inputs_follow_the_exported_config(exported: Path) -> None:
    import torch

    from clipbench.gpu.towers import inputs

    cuda.patch_repository(exported, SIZED)  # what the bench reads them from
    image_name, text_name = model_names(VERSION)
    pixels = inputs(exported, image_name, "image", 3, torch.device("cpu"))
    assert pixels.shape == (3, 3, 32, 32) and pixels.dtype == torch.uint8
    ids = inputs(exported, text_name, "text", 5, torch.device("cpu"))
    assert ids.shape == (5, TEXT_BUCKETS[0]) and (ids[:, -1] == EOT_ID).all() and (ids[:, :-1] < SOT_ID).all()
