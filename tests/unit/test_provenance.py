"""triton_clip/provenance.py without exporting: activation rules, reasons to re-export, what prune may touch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gateway.contract import model_names
from triton_clip import provenance
from triton_clip.towers import ExportError


def _fake_export(repo: Path, version: str, record: dict[str, str]) -> None:
    for name in model_names(version):
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "1" / "model.pt").write_bytes(b"x")
        (repo / name / "config.pbtxt").write_text(
            f'name: "{name}"\nparameters {{ key: "clip_version" value {{ string_value: "{version}" }} }}\n'
        )
        (repo / name / provenance.MANIFEST).write_text(json.dumps({"clip_version": version, "provenance": record}))


def test_activation_rules() -> None:
    assert provenance.resolve_quick_gelu("ViT-B-32", "openai") is True  # the tag was trained so
    assert provenance.resolve_quick_gelu("ViT-B-32", "laion2b_s34b_b79k") is False
    assert provenance.resolve_quick_gelu("ViT-B-32", "/ckpt/x.pt") is True  # Roboflow id: OpenAI arch
    assert provenance.resolve_quick_gelu("ViT-B-32", "/ckpt/x.pt", "off") is False
    assert provenance.resolve_quick_gelu("convnext_base_w", "none") is False  # its own config
    assert provenance.resolve_quick_gelu("ViT-B-32-quickgelu", "none") is True
    with pytest.raises(ExportError, match="contradicts"):
        provenance.resolve_quick_gelu("ViT-B-32", "openai", "off")


def test_stale_reasons_name_every_difference(tmp_path: Path) -> None:
    have = {"weights": "tag:openai", "precision": "fp32", "target": "cpu"}
    assert provenance.stale_reasons("ViT-B-32", tmp_path, have) == ["not exported yet"]
    _fake_export(tmp_path, "ViT-B-32", have)
    assert provenance.stale_reasons("ViT-B-32", tmp_path, have) == []
    want = {**have, "precision": "fp16", "torch_version": "2.5.1"}
    assert provenance.stale_reasons("ViT-B-32", tmp_path, want) == [
        "precision fp32 -> fp16",
        "torch_version unset -> 2.5.1",
    ]
    (tmp_path / "clip-ViT-B-32-text" / provenance.MANIFEST).unlink()  # one tower from an older exporter
    assert provenance.stale_reasons("ViT-B-32", tmp_path, have) == ["exported by an older exporter or incomplete"]


def test_prune_removes_only_unlisted_versions_it_wrote(tmp_path: Path) -> None:
    _fake_export(tmp_path, "ViT-B-32", {"target": "cpu"})
    _fake_export(tmp_path, "RN50", {"target": "cpu"})
    (tmp_path / "clip-custom").mkdir()  # our prefix, not our model
    (tmp_path / "clip-custom" / "config.pbtxt").write_text('name: "clip-custom"\n')
    (tmp_path / "resnet-classifier").mkdir()
    assert provenance.prune(tmp_path, ["ViT-B-32"]) == ["RN50"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip-ViT-B-32-image",
        "clip-ViT-B-32-text",
        "clip-custom",
        "resnet-classifier",
    ]


def test_checkpoint_source_is_its_sha256(tmp_path: Path) -> None:
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"weights")
    assert provenance.weights_source(str(ckpt), 0) == "sha256:" + hashlib.sha256(b"weights").hexdigest()
    ckpt.write_bytes(b"other weights")  # a changed file is a changed source (the cache keys on size and mtime)
    assert provenance.weights_source(str(ckpt), 0) == "sha256:" + hashlib.sha256(b"other weights").hexdigest()
    assert provenance.weights_source("none", 3) == "random:seed=3"
    with pytest.raises(ExportError, match="does not exist"):
        provenance.weights_source(str(tmp_path / "missing.pt"), 0)
