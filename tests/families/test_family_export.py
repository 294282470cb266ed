"""Export of whole family architectures, and clear failures for what the exporter cannot serve exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.integration.test_export import config, export


def test_unservable_family_fails_with_the_reason(tmp_path: Path) -> None:
    """CoCa's text tower appends a class token and returns token features: refused, nothing written."""
    result = export(tmp_path / "repo", "--versions", "coca-tiny", "--model-config", str(FIXTURES / "coca-tiny.json"),
                    "--pretrained", "none")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "coca-tiny" in out and "not supported" in out
    assert not any((tmp_path / "repo").glob("clip-*"))


@pytest.mark.slow
@pytest.mark.parametrize(("version", "text_dims", "context", "buckets", "size"), [
    ("MobileCLIP2-S0", [77], "77", "77", 256),         # non-causal: full context only
    ("PE-Core-T-16-384", [-1], "32", "16,32", 384),    # causal, 32 tokens: sliced, verified at 16
])
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
