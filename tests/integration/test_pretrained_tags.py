"""A pretrained tag is exported the way it was trained: the real `openai` tag path, offline.

A seeded random ViT-B-32 checkpoint is placed in a Hugging Face cache folder under the exact repo and file
name open_clip resolves the `openai` tag to; with HF_HOME and HF_HUB_OFFLINE=1 the export loads it as it
would load OpenAI's weights. The reference is open_clip's own eager `ViT-B-32-quickgelu` (how OpenAI's
weights are meant to run), built from the same file; the GELU model built from it must differ measurably,
so this test fails if the export ever serves the tag with GELU again.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import numpy as np
import pybase64
import pytest
import torch
from PIL import Image

from tests.integration.served import cosine, embed, export, serving
from tests.integration.test_export import config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME, TAG = "ViT-B-32", "openai"
HF_REPO, HF_FILE = "timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin"
REVISION = "0123456789abcdef0123456789abcdef01234567"
# With random init the MLP branch is a small part of the residual stream, so the activation hardly shows in
# the embedding; scaling the MLP output projection makes it dominate, as in trained weights (measured: min
# cosine GELU vs QuickGELU ~0.99998 unscaled, ~0.99975 at 200x; it saturates there).
C_PROJ_SCALE = 200.0
TEXTS = ["a photo of a cat", "a diagram of a neural network", "two dogs playing in the snow"]
MIN_COSINE = 0.999999
GELU_MAX_COSINE = 0.9999  # the wrong activation is >= 100x the tolerance off (measured ~0.99975)


def _checkpoint(path: Path) -> None:
    import open_clip

    torch.manual_seed(1234)
    model = open_clip.create_model(f"{NAME}-quickgelu", pretrained=None)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".mlp.c_proj." in name:
                param.mul_(C_PROJ_SCALE)
    torch.save(model.state_dict(), path)


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    """$HF_HOME with the checkpoint at hub/models--timm--.../snapshots/REV/<file>, refs/main = REV."""
    import open_clip

    # The exact names open_clip resolves the tag to (pretrained.py download_pretrained): a change fails here.
    hub = open_clip.get_pretrained_cfg(NAME, TAG)["hf_hub"]
    assert hub == f"{HF_REPO}/" and open_clip.constants.HF_WEIGHTS_NAME == HF_FILE
    home = tmp_path_factory.mktemp("hf")
    repo_dir = home / "hub" / f"models--{HF_REPO.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(REVISION)
    snapshot = repo_dir / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    _checkpoint(snapshot / HF_FILE)
    return home


def _offline(hf_home: Path) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}


def _png(size: int) -> tuple[bytes, Image.Image]:
    from skimage import data as skdata

    img = Image.fromarray(skdata.astronaut()).convert("RGB").resize((size, size), Image.BICUBIC)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue(), img


def _eager(model, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    import open_clip

    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
    tokens = open_clip.get_tokenizer(NAME)(TEXTS)
    with torch.inference_mode():
        image = model.encode_image(torch.stack([preprocess(i) for i in images]))
        text = model.encode_text(tokens)
    return image.double().numpy(), text.double().numpy()


def test_openai_tag_is_served_with_quick_gelu(hf_home: Path, tmp_path: Path) -> None:
    import open_clip

    repo = tmp_path / "repo"
    result = export(repo, "--versions", NAME, "--pretrained", TAG, "--cpu-threads", "2", env=_offline(hf_home))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((repo / f"clip-{NAME}-image" / "clip_version.json").read_text())
    assert manifest["provenance"]["activation"] == "quick_gelu" and manifest["provenance"]["weights"] == f"tag:{TAG}"
    # The real architecture's configs (this replaces a separate random-weights ViT-B-32 export test).
    image, text = config(repo, f"clip-{NAME}-image"), config(repo, f"clip-{NAME}-text")
    assert list(image.input[0].dims) == [3, 224, 224] and list(image.output[0].dims) == [512]
    assert list(text.input[0].dims) == [-1] and list(text.output[0].dims) == [512]
    assert text.parameters["context_length"].string_value == "77"
    assert image.parameters["activation"].string_value == "quick_gelu"
    assert (repo / f"clip-{NAME}-text" / "bpe_simple_vocab_16e6.txt.gz").is_file()

    checkpoint = str(hf_home / "hub" / f"models--{HF_REPO.replace('/', '--')}" / "snapshots" / REVISION / HF_FILE)
    quick = open_clip.create_model(f"{NAME}-quickgelu", pretrained=checkpoint).eval()
    gelu = open_clip.create_model(NAME, pretrained=checkpoint).eval()
    png, img = _png(224)
    want_image, want_text = _eager(quick, [img])
    gelu_image, gelu_text = _eager(gelu, [img])

    with serving(repo, tmp_path / "logs", NAME) as (_, gateway):
        payload = {"type": "base64", "value": pybase64.b64encode(png).decode()}
        got_image = embed(gateway, "embed_image", {"image": [payload]})
        got_text = embed(gateway, "embed_text", {"text": TEXTS})
        info = httpx.get(f"{gateway.base_url}/info", timeout=10).json()

    assert [v["activation"] for v in info["versions"]] == ["quick_gelu"], info
    assert cosine(got_image, want_image).min() >= MIN_COSINE
    assert cosine(got_text, want_text).min() >= MIN_COSINE
    # The same weights with GELU are measurably different: this test can fail.
    gelu_cos = min(cosine(got_image, gelu_image).min(), cosine(got_text, gelu_text).min())
    logging.getLogger(__name__).warning("served vs GELU model: min cosine %.6f", gelu_cos)
    print(f"\nGELU-vs-QuickGELU min cosine (served vs eager GELU): {gelu_cos:.6f}")
    assert gelu_cos < GELU_MAX_COSINE


def test_quick_gelu_flag_cannot_contradict_a_tag(hf_home: Path, tmp_path: Path) -> None:
    result = export(
        tmp_path / "repo", "--versions", NAME, "--pretrained", TAG, "--quick-gelu", "off", env=_offline(hf_home)
    )
    assert result.returncode != 0
    assert "trained with QuickGELU" in " ".join((result.stdout + result.stderr).split())
    assert not any((tmp_path / "repo").glob("clip-*"))


def test_open_clip_mismatch_warning_is_an_export_error(hf_home: Path, monkeypatch) -> None:
    """Were the activation resolved wrongly, open_clip's QuickGELU warning stops the export."""
    from huggingface_hub import constants

    from triton_clip import provenance
    from triton_clip.export import ExportRequest
    from triton_clip.reference import load_model
    from triton_clip.towers import ExportError

    # huggingface_hub read HF_HOME when first imported (earlier in this session): point its constants here.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(provenance, "resolve_quick_gelu", lambda *_: False)
    with pytest.raises(ExportError, match="QuickGELU mismatch"):
        load_model(ExportRequest(NAME, TAG))
