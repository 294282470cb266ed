"""The export command (`clip-export` = `python -m triton_clip.cli`) as users run it: clear failures, nothing
half-written, real architectures export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "tests" / "fixtures" / "clip-tiny.json"


def export(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "triton_clip.cli", "--repository", str(repo), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def config(repo: Path, name: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_help_lists_versions() -> None:
    result = subprocess.run([sys.executable, "-m", "triton_clip.cli", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "ViT-L-14-336px" in result.stdout and "--pretrained" in result.stdout


def test_unknown_model_fails_clearly(tmp_path: Path) -> None:
    result = export(tmp_path / "repo", "--versions", "ViT-Z-99", "--pretrained", "none")
    assert result.returncode != 0
    assert "unknown CLIP version 'ViT-Z-99'" in result.stdout + result.stderr
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_unreachable_download_names_both_alternatives(tmp_path: Path) -> None:
    # No model hub here: offline mode makes the hub fail at once, as a dead network does slowly.
    result = export(tmp_path / "repo", "--versions", "ViT-B-32", "--pretrained", "openai",
                    env={"HF_HUB_OFFLINE": "1"})
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


def test_gpu_target_fp16_writes_libtorch_configs(tmp_path: Path) -> None:
    repo = tmp_path / "gpu"
    result = export(repo, "--versions", "clip-tiny", "--model-config", str(TINY_CONFIG), "--pretrained", "none",
                    "--target", "gpu", "--fp16")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("clip-clip-tiny-image", "clip-clip-tiny-text"):
        cfg = config(repo, name)
        assert cfg.platform == "pytorch_libtorch"
        assert cfg.parameters["precision"].string_value == "fp16"
        assert (repo / name / "1" / "model.pt").is_file() and not (repo / name / "1" / "model.py").exists()
    # Export is a cache: a second run skips the version.
    again = export(repo, "--versions", "clip-tiny", "--model-config", str(TINY_CONFIG), "--target", "gpu")
    assert again.returncode == 0 and "already in" in again.stdout


@pytest.mark.slow
def test_real_vit_b_32_architecture_exports(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = export(repo, "--versions", "ViT-B-32", "--pretrained", "none", "--cpu-threads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    image, text = config(repo, "clip-ViT-B-32-image"), config(repo, "clip-ViT-B-32-text")
    assert list(image.input[0].dims) == [3, 224, 224] and list(image.output[0].dims) == [512]
    assert list(text.input[0].dims) == [-1] and list(text.output[0].dims) == [512]
    assert image.parameters["weights_random"].string_value == "true"
    assert text.parameters["context_length"].string_value == "77"
    assert (repo / "clip-ViT-B-32-text" / "bpe_simple_vocab_16e6.txt.gz").is_file()
    assert (repo / "clip-ViT-B-32-image" / "clip_version.json").is_file()
