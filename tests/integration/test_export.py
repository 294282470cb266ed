"""The export command (`clip-export` = `python -m triton_clip.cli`) as users run it: clear failures, nothing
half-written, real architectures export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.integration.served import export

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "tests" / "fixtures" / "clip-tiny.json"


def config(repo: Path, name: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_help_lists_versions() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "triton_clip.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "ViT-L-14-336px" in result.stdout and "--pretrained" in result.stdout


def test_unknown_model_fails_clearly(tmp_path: Path) -> None:
    result = export(tmp_path / "repo", "--versions", "ViT-Z-99", "--pretrained", "none")
    assert result.returncode != 0
    assert "unknown CLIP version 'ViT-Z-99'" in result.stdout + result.stderr
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_unreachable_download_names_both_alternatives(tmp_path: Path) -> None:
    # No model hub here: offline mode makes the hub fail at once, as a dead network does slowly.
    result = export(tmp_path / "repo", "--versions", "ViT-B-32", "--pretrained", "openai", env={"HF_HUB_OFFLINE": "1"})
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "could not load pretrained weights 'openai'" in out
    assert "--checkpoint PATH" in out and "--pretrained none" in out
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_missing_checkpoint_fails_clearly(tmp_path: Path) -> None:
    result = export(tmp_path / "repo", "--versions", "ViT-B-32", "--checkpoint", str(tmp_path / "nope.pt"))
    assert result.returncode != 0
    assert "does not exist" in result.stdout + result.stderr
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_failure_while_writing_leaves_no_model_folder(tmp_path: Path, open_clip_tiny, monkeypatch) -> None:
    from triton_clip import export as export_module
    from triton_clip.export import ExportRequest, export_version

    real_write, calls = export_module.write_model, []

    def fail_on_second(folder, spec, scripted):  # noqa: ANN001
        calls.append(spec.name)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(folder, spec, scripted)

    monkeypatch.setattr(export_module, "write_model", fail_on_second)
    repo = tmp_path / "repo"
    with pytest.raises(OSError):
        export_version(ExportRequest("clip-tiny", "none"), repo)
    assert list(repo.iterdir()) == []
    assert not any(p.name.startswith(".export-") for p in tmp_path.iterdir())


def test_gpu_target_refuses_a_torch_newer_than_tritons_libtorch(tmp_path: Path) -> None:
    # This venv's torch (2.14) is newer than the libtorch 2.5 of the default Triton image (24.10).
    result = export(
        tmp_path / "gpu",
        "--versions",
        "clip-tiny",
        "--model-config",
        str(TINY_CONFIG),
        "--pretrained",
        "none",
        "--target",
        "gpu",
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and "may not load" in out and "--allow-newer-torch" in out
    assert not (tmp_path / "gpu").exists()
    unknown = export(
        tmp_path / "gpu",
        "--versions",
        "clip-tiny",
        "--model-config",
        str(TINY_CONFIG),
        "--pretrained",
        "none",
        "--target",
        "gpu",
        "--triton-image",
        "nvcr.io/nvidia/tritonserver:99.01-py3",
    )
    assert unknown.returncode == 2 and "not in triton_clip/compat.py" in unknown.stderr


def test_gpu_target_fp16_writes_libtorch_configs(tmp_path: Path) -> None:
    repo = tmp_path / "gpu"
    result = export(
        repo,
        "--versions",
        "clip-tiny",
        "--model-config",
        str(TINY_CONFIG),
        "--pretrained",
        "none",
        "--target",
        "gpu",
        "--fp16",
        "--allow-newer-torch",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("clip-clip-tiny-image", "clip-clip-tiny-text"):
        cfg = config(repo, name)
        assert cfg.platform == "pytorch_libtorch"
        assert cfg.parameters["precision"].string_value == "fp16"
        assert cfg.parameters["torch_version"].string_value.startswith("2.")
        assert cfg.parameters["ENABLE_WEIGHT_SHARING"].string_value == "true"
        assert (repo / name / "1" / "model.pt").is_file() and not (repo / name / "1" / "model.py").exists()
    # Sized per model (triton_clip/sizing.py) and warmed up at every power of two up to the maximum.
    image = config(repo, "clip-clip-tiny-image")
    assert sorted({w.batch_size for w in image.model_warmup}) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    # Export is a cache: the same request again re-exports nothing.
    again = export(
        repo,
        "--versions",
        "clip-tiny",
        "--model-config",
        str(TINY_CONFIG),
        "--pretrained",
        "none",
        "--target",
        "gpu",
        "--fp16",
        "--allow-newer-torch",
    )
    assert again.returncode == 0 and "up to date" in again.stdout
