"""Roboflow's own client, inference-sdk (pinned in requirements/dev.txt), against the real gateway.

The SDK has hard expectations of the server (roboflow-clip-api.md §7): `frame_id` and `time` in every
embed_image response, more than one top-level key in embed_text, a body `api_key` (null here), one
request per image by default. Every call runs with `clip_version="clip-tiny"` and without it (the
gateway's default version is clip-tiny in the fixture).
"""

from __future__ import annotations

import io
import warnings

import httpx
import numpy as np
import pybase64
import pytest
import cv2
from skimage import data as skdata
from PIL import Image


from inference_sdk import InferenceConfiguration, InferenceHTTPClient  # noqa: E402
from inference_sdk.http.errors import HTTPCallErrorError  # noqa: E402

DIM = 32
VERSIONS = pytest.mark.parametrize("version", [None, "clip-tiny"], ids=["default-version", "clip-tiny"])


def rgb(name: str, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(getattr(skdata, name)()).convert("RGB").resize(size))


ASTRONAUT = rgb("astronaut", (120, 90))
COFFEE = rgb("coffee", (96, 64))
CHELSEA = rgb("chelsea", (70, 100))


def make_client(base_url: str, **config) -> InferenceHTTPClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = InferenceHTTPClient(api_url=base_url)
        return client.configure(InferenceConfiguration(api_key_transport="legacy", **config))


@pytest.fixture(scope="module")
def client(gateway) -> InferenceHTTPClient:
    return make_client(gateway.base_url)


@pytest.fixture(scope="module")
def raw(gateway):
    with httpx.Client(base_url=gateway.base_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def png_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sdk") / "astronaut.png"
    Image.fromarray(ASTRONAUT).save(path)
    return str(path)


def raw_embedding(raw: httpx.Client, data: bytes) -> np.ndarray:
    r = raw.post("/clip/embed_image", json={"image": {"type": "base64", "value": pybase64.b64encode(data).decode()}})
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["embeddings"][0])


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def one_row(result: dict) -> np.ndarray:
    assert isinstance(result, dict)
    assert {"frame_id", "time", "embeddings"} <= set(result)
    rows = np.asarray(result["embeddings"])
    assert rows.shape == (1, DIM)
    return rows[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.vdot(a, a) * np.vdot(b, b)))


@VERSIONS
def test_image_embeddings_from_a_file_path(client, raw, png_path, version):
    row = one_row(client.get_clip_image_embeddings(inference_input=png_path, clip_version=version))
    with open(png_path, "rb") as f:  # the SDK sends the file's own bytes
        np.testing.assert_allclose(row, raw_embedding(raw, f.read()), atol=1e-6)


@VERSIONS
def test_image_embeddings_from_a_pil_image(client, raw, version):
    image = Image.fromarray(COFFEE)
    row = one_row(client.get_clip_image_embeddings(inference_input=image, clip_version=version))
    buf = io.BytesIO()
    image.save(buf, format="JPEG")  # what the SDK does with a PIL image
    np.testing.assert_allclose(row, raw_embedding(raw, buf.getvalue()), atol=1e-6)


@VERSIONS
def test_image_embeddings_from_a_bgr_numpy_array(client, raw, version):
    bgr = np.ascontiguousarray(ASTRONAUT[:, :, ::-1])
    row = one_row(client.get_clip_image_embeddings(inference_input=bgr, clip_version=version))
    ok, jpeg = cv2.imencode(".jpg", bgr)  # what the SDK does with an array: BGR in, JPEG out
    assert ok
    np.testing.assert_allclose(row, raw_embedding(raw, jpeg.tobytes()), atol=1e-6)
    # The gateway reads that JPEG as RGB: closer to the RGB original than to its channel-swapped twin.
    right, swapped = raw_embedding(raw, png_bytes(ASTRONAUT)), raw_embedding(raw, png_bytes(bgr))
    assert cosine(row, right) > cosine(row, swapped)


def test_several_images_one_request_each(client, raw):
    images = [Image.fromarray(ASTRONAUT), Image.fromarray(COFFEE), Image.fromarray(CHELSEA)]
    result = client.get_clip_image_embeddings(inference_input=images)
    assert isinstance(result, list) and len(result) == 3
    rows = [one_row(r) for r in result]
    for image, row in zip(images, rows, strict=True):
        buf = io.BytesIO()
        image.save(buf, format="JPEG")
        np.testing.assert_allclose(row, raw_embedding(raw, buf.getvalue()), atol=1e-5)


def test_several_images_in_one_batched_request(gateway, client):
    """max_batch_size > 1 makes the SDK send a list; the response is split back per image, in order."""
    images = [Image.fromarray(ASTRONAUT), Image.fromarray(COFFEE), Image.fromarray(CHELSEA)]
    batched = make_client(gateway.base_url, max_batch_size=3).get_clip_image_embeddings(inference_input=images)
    single = client.get_clip_image_embeddings(inference_input=images)
    assert len(batched) == 3
    for b, s in zip(batched, single, strict=True):
        np.testing.assert_allclose(one_row(b), one_row(s), atol=1e-5)


@VERSIONS
def test_text_embeddings_string(client, version):
    result = client.get_clip_text_embeddings(text="a photo of an sdk astronaut", clip_version=version)
    assert isinstance(result, dict) and len(result) > 1  # the SDK's unwrap needs more than one key
    assert np.asarray(result["embeddings"]).shape == (1, DIM)


@VERSIONS
def test_text_embeddings_list(client, version):
    texts = ["an sdk dog", "an sdk cat", "an sdk astronaut"]
    result = client.get_clip_text_embeddings(text=texts, clip_version=version)
    rows = np.asarray(result["embeddings"])
    assert rows.shape == (3, DIM)
    for text, row in zip(texts, rows, strict=True):
        single = client.get_clip_text_embeddings(text=text, clip_version=version)
        np.testing.assert_allclose(row, np.asarray(single["embeddings"][0]), atol=1e-5)


@VERSIONS
def test_compare_with_a_list_prompt(client, png_path, version):
    prompts = ["an sdk dog", "an sdk cat", "an sdk astronaut"]
    result = client.clip_compare(subject=png_path, prompt=prompts, clip_version=version)
    assert set(result) == {"similarity", "time", "parent_id", "inference_id", "frame_id"}  # upstream's pinned set
    assert isinstance(result["similarity"], list) and len(result["similarity"]) == 3
    image = one_row(client.get_clip_image_embeddings(inference_input=png_path, clip_version=version))
    texts = np.asarray(client.get_clip_text_embeddings(text=prompts, clip_version=version)["embeddings"])
    np.testing.assert_allclose(result["similarity"], [cosine(image, t) for t in texts], atol=1e-5)


@VERSIONS
def test_compare_with_a_dict_prompt(client, png_path, version):
    prompt = {"dog": "an sdk dog", "cat": "an sdk cat"}
    result = client.clip_compare(subject=png_path, prompt=prompt, clip_version=version)
    assert list(result["similarity"]) == ["dog", "cat"]
    as_list = client.clip_compare(subject=png_path, prompt=list(prompt.values()), clip_version=version)
    np.testing.assert_allclose(list(result["similarity"].values()), as_list["similarity"], atol=1e-6)


def test_compare_text_subject_to_image_prompts(client):
    images = [Image.fromarray(ASTRONAUT), Image.fromarray(COFFEE)]
    result = client.clip_compare(
        subject="an sdk astronaut", subject_type="text", prompt=images, prompt_type="image", clip_version="clip-tiny"
    )
    assert len(result["similarity"]) == 2


@VERSIONS
def test_compare_text_subject_to_one_image_prompt(client, png_path, version):
    """One image prompt travels as `{"type": "base64", "value": ...}`: one image, a similarity list of one."""
    result = client.clip_compare(
        subject="an sdk astronaut", subject_type="text", prompt=png_path, prompt_type="image", clip_version=version
    )
    assert isinstance(result["similarity"], list) and len(result["similarity"]) == 1
    image = one_row(client.get_clip_image_embeddings(inference_input=png_path, clip_version=version))
    text = np.asarray(client.get_clip_text_embeddings(text="an sdk astronaut", clip_version=version)["embeddings"][0])
    assert result["similarity"][0] == pytest.approx(cosine(text, image), abs=1e-5)


def test_errors_reach_the_sdk_as_http_call_errors(client, png_path):
    with pytest.raises(HTTPCallErrorError) as too_many:
        client.clip_compare(subject=png_path, prompt=[f"p{i}" for i in range(9)])
    assert too_many.value.status_code == 400
    assert "8" in too_many.value.api_message
    with pytest.raises(HTTPCallErrorError) as unknown:
        client.get_clip_text_embeddings(text="x", clip_version="ViT-H-99")
    assert unknown.value.status_code == 404
    assert "clip-tiny" in unknown.value.api_message


async def test_async_twins(client, png_path):
    image = await client.get_clip_image_embeddings_async(inference_input=png_path, clip_version="clip-tiny")
    text = await client.get_clip_text_embeddings_async(text=["an sdk dog", "an sdk cat"])
    compared = await client.clip_compare_async(subject=png_path, prompt={"a": "an sdk dog"})
    assert one_row(image).shape == (DIM,)
    assert np.asarray(text["embeddings"]).shape == (2, DIM)
    assert list(compared["similarity"]) == ["a"]
