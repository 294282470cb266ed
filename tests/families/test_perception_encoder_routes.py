"""Roboflow's /perception_encoder/* routes with the real inference-sdk and upstream's request shapes.

The family gateway's default Perception Encoder version is the tiny PE-Core export; CLIP routes
serve the other families only. Embeddings are checked against eager open_clip (conftest `eager`).
"""

from __future__ import annotations

import io
import warnings

import httpx
import numpy as np
import pybase64
import pytest
import torch
from inference_sdk import InferenceConfiguration, InferenceHTTPClient
from PIL import Image

from tests.families.conftest import FAMILIES, PE_CORE
from tests.integration.test_parity import compare_rows, photo


MIN_COSINE = 0.99999
CLIP_FAMILY = FAMILIES[0].version  # MobileCLIP2: served on /clip/* only
VERSIONS = pytest.mark.parametrize("version", [None, PE_CORE], ids=["default-version", "explicit"])


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


CHELSEA = png(photo("chelsea"))


def b64(data: bytes) -> dict:
    return {"type": "base64", "value": pybase64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def sdk_client(family_gateway) -> InferenceHTTPClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = InferenceHTTPClient(api_url=family_gateway.base_url)
        return client.configure(InferenceConfiguration(api_key_transport="legacy"))


@pytest.fixture(scope="module")
def raw(family_gateway):
    with httpx.Client(base_url=family_gateway.base_url, timeout=120) as c:
        yield c


def eager_image(eager, data: bytes) -> np.ndarray:
    model, transform, _ = eager[PE_CORE]
    with torch.inference_mode():
        return model.encode_image(transform(Image.open(io.BytesIO(data))).unsqueeze(0)).float().numpy()[0]


def eager_texts(eager, texts: list[str]) -> np.ndarray:
    model, _, tokenizer = eager[PE_CORE]
    with torch.inference_mode():
        return model.encode_text(tokenizer(texts)).float().numpy()


@VERSIONS
def test_sdk_image_embeddings(version, sdk_client, eager, tmp_path) -> None:
    path = tmp_path / "chelsea.png"
    path.write_bytes(CHELSEA)
    result = sdk_client.get_perception_encoder_image_embeddings(str(path), perception_encoder_version=version)
    assert {"frame_id", "time", "embeddings"} <= set(result)
    cos, diff = compare_rows(result["embeddings"][0], eager_image(eager, CHELSEA))
    assert cos >= MIN_COSINE, (cos, diff)


@VERSIONS
def test_sdk_text_embeddings(version, sdk_client, eager) -> None:
    texts = ["a photo of a cat", "a diagram"]
    result = sdk_client.get_perception_encoder_text_embeddings(texts, perception_encoder_version=version)
    want = eager_texts(eager, texts)
    for row, ref in zip(result["embeddings"], want, strict=True):
        assert compare_rows(row, ref)[0] >= MIN_COSINE


def test_compare_in_upstreams_shape(raw, eager) -> None:
    body = {
        "subject": b64(CHELSEA),
        "prompt": {"cat": "a cat", "dog": "a dog"},
        "perception_encoder_version_id": PE_CORE,
    }
    r = raw.post("/perception_encoder/compare", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= {"similarity", "time", "parent_id"} and set(out["similarity"]) == {"cat", "dog"}
    image, texts = eager_image(eager, CHELSEA), eager_texts(eager, ["a cat", "a dog"])
    for key, text in zip(("cat", "dog"), texts, strict=True):
        want = float(np.dot(image, text) / np.linalg.norm(image) / np.linalg.norm(text))
        assert abs(out["similarity"][key] - want) < 1e-5


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (
            "/perception_encoder/embed_text",
            {"text": "x", "perception_encoder_version_id": "PE-Core-Z9"},
            404,
            f"Perception Encoder version 'PE-Core-Z9' is not served here. Served versions: {PE_CORE}.",
        ),
        (
            "/perception_encoder/embed_text",
            {"text": "x", "perception_encoder_version_id": CLIP_FAMILY},
            404,
            "Served versions: PE-Core-tiny-16-384.",
        ),
        ("/clip/embed_text", {"text": "x", "clip_version_id": PE_CORE}, 404, "CLIP version 'PE-Core-tiny-16-384'"),
        ("/perception_encoder/embed_image", {"image": [b64(CHELSEA)] * 9}, 400, "is 8"),
        (
            "/perception_encoder/embed_image",
            {"image": {"type": "base64", "value": "not an image"}},
            400,
            "Could not load input image",
        ),
        ("/perception_encoder/embed_text", {"text": "word " * 40}, 400, "Text input is too long"),
        (
            "/perception_encoder/compare",
            {"subject": b64(CHELSEA), "prompt": "x", "prompt_type": "audio"},
            400,
            "prompt_type must be",
        ),
    ],
)
def test_errors_have_the_clip_routes_shapes(raw, path, body, status, needle) -> None:
    r = raw.post(path, json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["message"]


def test_schema_errors_are_fastapis_422(raw) -> None:
    r = raw.post("/perception_encoder/embed_text", json={"perception_encoder_version_id": PE_CORE})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "text"
