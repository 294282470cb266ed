"""Export of whole family architectures, and clear failures for what the exporter cannot serve exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.integration.test_export import config, export


def test_unservable_family_fails_with_the_reason(tmp_path: Path) -> None:
    """CoCa's text tower appends a class token and returns token features: refused, nothing written."""
    result = export(
        tmp_path / "repo",
        "--versions",
        "coca-tiny",
        "--model-config",
        str(FIXTURES / "coca-tiny.json"),
        "--pretrained",
        "none",
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "coca-tiny" in out and "not supported" in out
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_tiny_eva_exports_and_matches_eager(tmp_path: Path) -> None:
    """The tiny EVA-CLIP tower (rotary embeddings, SwiGLU, separate q/k/v) scripts and passes the export check."""
    from triton_clip.export import ExportRequest, export_version

    _register_tiny_eva()
    repo = tmp_path / "repo"
    export_version(ExportRequest("EVA02-tiny-16", "none", "cpu", cpu_threads=1), repo)
    image, text = config(repo, "clip-EVA02-tiny-16-image"), config(repo, "clip-EVA02-tiny-16-text")
    assert list(image.input[0].dims) == [3, 224, 224] and list(text.input[0].dims) == [-1]
    params = {k: v.string_value for k, v in text.parameters.items()}
    assert params["family"] == "eva" and params["text_buckets"] == "16,32,77"


def test_inexact_eva_tower_fails_the_export_with_the_reason(tmp_path: Path, monkeypatch) -> None:
    """An image tower that lost EVA's rotary embeddings on the way to TorchScript is caught by the export
    check against eager open_clip: the export fails saying by how much, and nothing is written."""
    import copy

    from triton_clip import export as export_module
    from triton_clip.towers import ExportError, ImageTower

    real = export_module.to_torchscript

    def without_rope(module, example):  # noqa: ANN001, ANN202
        if isinstance(module, ImageTower):
            module = copy.deepcopy(module)  # the eager reference keeps its rotary embeddings
            assert module.visual.trunk.rope is not None
            module.visual.trunk.rope = None
        return real(module, example)

    _register_tiny_eva()
    monkeypatch.setattr(export_module, "to_torchscript", without_rope)
    repo = tmp_path / "repo"
    with pytest.raises(ExportError, match="image tower: TorchScript differs from eager open_clip"):
        export_module.export_version(export_module.ExportRequest("EVA02-tiny-16", "none", "cpu", cpu_threads=1), repo)
    assert not any(repo.glob("clip-*"))


def _register_tiny_eva() -> None:
    import open_clip

    import tests.families.eva_tiny  # noqa: F401 - the timm tower EVA02-tiny-16 names

    open_clip.add_model_config(FIXTURES / "EVA02-tiny-16.json")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "text_dims", "context", "buckets", "size"),
    [
        ("MobileCLIP2-S0", [77], "77", "77", 256),  # non-causal: full context only
        ("PE-Core-T-16-384", [-1], "32", "16,32", 384),  # causal, 32 tokens: sliced, verified at 16
        ("EVA02-B-16", [-1], "77", "16,32,77", 224),  # timm EVA-CLIP tower (rotary, SwiGLU), ~20 s
    ],
)
def test_real_family_architecture_exports(tmp_path: Path, version, text_dims, context, buckets, size) -> None:
    """The real open_clip architecture (random weights) scripts/traces and matches eager open_clip in export."""
    repo = tmp_path / "repo"
    result = export(repo, "--versions", version, "--pretrained", "none", "--cpu-threads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    image, text = config(repo, f"clip-{version}-image"), config(repo, f"clip-{version}-text")
    assert list(image.input[0].dims) == [3, size, size] and list(text.input[0].dims) == text_dims
    params = {k: v.string_value for k, v in text.parameters.items()}
    assert params["context_length"] == context and params["text_buckets"] == buckets
    assert params["text_buckets_exact"] == ("true" if text_dims == [-1] else "false")
