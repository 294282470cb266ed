"""An export follows every change of what is asked, and only the listed versions are served.

Export A (random weights), then ask for B (a checkpoint with other weights; another activation; fp16 on
the gpu target): each is re-exported, says why, and B is what Triton serves (checked against eager
open_clip built from B's checkpoint). Asking for the same thing again re-exports nothing. A version
dropped from the list leaves the repository, and the gateway answers 404 for it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import torch

from tests.conftest import FIXTURES
from tests.integration.served import cosine, embed, export, serving

pytestmark = pytest.mark.timeout(600)

TINY, OTHER = "clip-tiny", "clip-tiny-b"
TEXTS = ["a photo of a cat", "a red bicycle"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> list[str]:
    """--model-config flags for two tiny versions (the same small architecture under two names)."""
    folder = tmp_path_factory.mktemp("cfg")
    shutil.copyfile(FIXTURES / f"{TINY}.json", folder / f"{OTHER}.json")
    return ["--model-config", str(FIXTURES / f"{TINY}.json"), "--model-config", str(folder / f"{OTHER}.json")]


def _provenance(repo: Path, version: str = TINY) -> dict:
    return json.loads((repo / f"clip-{version}-image" / "clip_version.json").read_text())["provenance"]


def _mtime(repo: Path, version: str = TINY) -> int:
    return (repo / f"clip-{version}-image" / "1" / "model.pt").stat().st_mtime_ns


def _ok(result) -> str:  # noqa: ANN001
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out
    return out


def test_every_change_reexports_and_is_served(tmp_path: Path, configs: list[str], open_clip_tiny) -> None:
    repo = tmp_path / "repo"
    base = ["--versions", TINY, *configs, "--cpu-threads", "1"]
    _ok(export(repo, *base, "--pretrained", "none"))
    assert _provenance(repo)["weights"] == "random:seed=0"

    # B: other weights (a checkpoint file) -> re-exported, and B is what Triton serves.
    torch.manual_seed(7)
    model_b = open_clip_tiny.create_model(TINY, pretrained=None).eval()
    ckpt = tmp_path / "b.pt"
    torch.save(model_b.state_dict(), ckpt)
    out = _ok(export(repo, *base, "--checkpoint", str(ckpt)))
    assert "exporting (weights random:seed=0 -> sha256:" in out
    assert _provenance(repo)["weights"].startswith("sha256:")
    with serving(repo, tmp_path / "logs-b", TINY) as (_, gateway):
        served = embed(gateway, "embed_text", {"text": TEXTS})
    reference = open_clip_tiny.create_model(TINY, pretrained=str(ckpt)).eval()
    with torch.inference_mode():
        want = reference.encode_text(open_clip_tiny.get_tokenizer(TINY)(TEXTS)).double().numpy()
    assert cosine(served, want).min() >= 0.99999

    # The same request again: nothing is rebuilt.
    before = _mtime(repo)
    out = _ok(export(repo, *base, "--checkpoint", str(ckpt)))
    assert "up to date" in out and _mtime(repo) == before

    # Another activation -> re-exported, recorded.
    out = _ok(export(repo, *base, "--checkpoint", str(ckpt), "--quick-gelu", "on"))
    assert "activation gelu -> quick_gelu" in out and _provenance(repo)["activation"] == "quick_gelu"

    # fp16 on the gpu target -> re-exported as libtorch fp16 (not served here: no GPU).
    out = _ok(export(repo, *base, "--checkpoint", str(ckpt), "--target", "gpu", "--fp16", "--allow-newer-torch"))
    assert "precision fp32 -> fp16" in out and "target cpu -> gpu" in out
    config = (repo / f"clip-{TINY}-text" / "config.pbtxt").read_text()
    assert 'platform: "pytorch_libtorch"' in config and '"fp16"' in config


def test_dropped_version_is_removed_and_404(tmp_path: Path, configs: list[str]) -> None:
    repo = tmp_path / "repo"
    _ok(export(repo, "--versions", f"{TINY},{OTHER}", *configs, "--pretrained", "none", "--cpu-threads", "1"))
    (repo / "someone-elses-model").mkdir()  # not ours: must survive
    out = _ok(export(repo, "--versions", OTHER, *configs, "--pretrained", "none", "--cpu-threads", "1"))
    assert f"{TINY}: removed" in out and "up to date" in out
    assert not (repo / f"clip-{TINY}-image").exists() and not (repo / f"clip-{TINY}-text").exists()
    assert (repo / f"clip-{OTHER}-image").is_dir() and (repo / "someone-elses-model").is_dir()
    (repo / "someone-elses-model").rmdir()
    with serving(repo, tmp_path / "logs", OTHER) as (_, gateway):
        response = httpx.post(
            f"{gateway.base_url}/clip/embed_text", json={"text": "a cat", "clip_version_id": TINY}, timeout=30
        )
        assert response.status_code == 404, response.text
        assert embed(gateway, "embed_text", {"text": "a cat", "clip_version_id": OTHER}).shape[0] == 1
