"""The HTTP contract of the gateway, against the real gateway + tritonserver (tests/conftest.py).

Upstream is `roboflow-clip-api.md` (§2 requests, §3 responses, §6 errors, §8 upstream's own integration
cases); where `contract-decisions.md` deliberately differs (400 for limits, 404 for unknown versions,
numpy refused, `truncate` extension) the decision is what is asserted.
"""

from __future__ import annotations

import io
import math

import httpx
import numpy as np
import pybase64
import pytest
from skimage import data as skdata
from PIL import Image


TINY = "clip-tiny"
DIM = 32
EMBED_KEYS = {"inference_id", "frame_id", "time", "embeddings"}
COMPARE_KEYS = {"inference_id", "frame_id", "time", "similarity", "parent_id"}
TEXTS = ["a photo of a cat", "a photo of a dog", "an astronaut in a white suit"]


def _b64(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return pybase64.b64encode(buf.getvalue()).decode()


def _image(name: str, size: tuple[int, int]) -> dict:
    arr = getattr(skdata, name)()
    return {"type": "base64", "value": _b64(Image.fromarray(arr).convert("RGB").resize(size))}


# Three different photographs, three sizes: a list mixes shapes (upstream's default engine cannot).
IMAGES = [_image("astronaut", (80, 80)), _image("chelsea", (90, 60)), _image("coffee", (50, 75))]


@pytest.fixture(scope="module")
def client(gateway):
    with httpx.Client(base_url=gateway.base_url, timeout=60) as c:
        yield c


def ok(response: httpx.Response, keys: set[str]) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == keys  # exact key set
    assert body["inference_id"] is None and body["frame_id"] is None  # nulls present, not omitted
    assert type(body["time"]) is float and 0.0 < body["time"] < 30.0  # seconds, not ms
    if "parent_id" in keys:
        assert body["parent_id"] is None
    return body


def embed_images(client: httpx.Client, image, **extra) -> np.ndarray:
    body = ok(client.post("/clip/embed_image", json={"image": image, **extra}), EMBED_KEYS)
    return np.asarray(body["embeddings"], dtype=np.float64)


def embed_texts(client: httpx.Client, text, **extra) -> np.ndarray:
    body = ok(client.post("/clip/embed_text", json={"text": text, **extra}), EMBED_KEYS)
    return np.asarray(body["embeddings"], dtype=np.float64)


def compare(client: httpx.Client, **payload):
    return ok(client.post("/clip/compare", json=payload), COMPARE_KEYS)["similarity"]


def np_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.vdot(a, a) * np.vdot(b, b)))


def error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    if status != 422:
        assert isinstance(body["message"], str) and body["message"]
    return body


# --- upstream's integration cases (tests/inference/integration_tests/clip_test.py) -----------------


def test_embed_one_image(client):
    rows = embed_images(client, IMAGES[0])
    assert rows.shape == (1, DIM)
    assert np.isfinite(rows).all()


def test_embed_three_images_in_order_each_equal_to_single(client):
    rows = embed_images(client, IMAGES)
    assert rows.shape == (3, DIM)
    for i, image in enumerate(IMAGES):
        np.testing.assert_allclose(rows[i], embed_images(client, image)[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(rows[0], rows[1])  # different photographs, different rows


def test_a_list_of_one_image_is_one_row(client):
    np.testing.assert_allclose(embed_images(client, [IMAGES[1]]), embed_images(client, IMAGES[1]), atol=1e-5)


def test_embed_one_text(client):
    rows = embed_texts(client, TEXTS[0])
    assert rows.shape == (1, DIM)


def test_embed_three_texts_in_order_each_equal_to_single(client):
    rows = embed_texts(client, TEXTS)
    assert rows.shape == (3, DIM)
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(rows[i], embed_texts(client, text)[0], rtol=1e-5, atol=1e-5)


def test_embeddings_are_raw_not_unit_norm(client):
    for rows in (embed_images(client, IMAGES), embed_texts(client, TEXTS)):
        norms = np.linalg.norm(rows, axis=1)
        assert np.all(np.abs(norms - 1.0) > 1e-3), norms


def test_compare_image_to_text_string(client):
    sim = compare(client, subject=IMAGES[0], prompt=TEXTS[0])
    assert isinstance(sim, list) and len(sim) == 1  # a single prompt string is still a list
    image, text = embed_images(client, IMAGES[0])[0], embed_texts(client, TEXTS[0])[0]
    assert sim[0] == pytest.approx(np_cosine(image, text), abs=1e-5)


def test_compare_image_to_text_list(client):
    sim = compare(client, subject=IMAGES[0], prompt=TEXTS, subject_type="image", prompt_type="text")
    image, texts = embed_images(client, IMAGES[0])[0], embed_texts(client, TEXTS)
    assert isinstance(sim, list) and len(sim) == 3
    np.testing.assert_allclose(sim, [np_cosine(image, t) for t in texts], atol=1e-5)
    assert all(-1.0 <= s <= 1.0 for s in sim)


def test_compare_image_to_text_dict_keeps_keys_in_order(client):
    prompt = {"Key3": TEXTS[2], "Key1": TEXTS[0], "Key2": TEXTS[1]}
    sim = compare(client, subject=IMAGES[0], prompt=prompt)
    assert isinstance(sim, dict)
    assert list(sim) == ["Key3", "Key1", "Key2"]
    as_list = compare(client, subject=IMAGES[0], prompt=list(prompt.values()))
    np.testing.assert_allclose(list(sim.values()), as_list, atol=1e-6)


def test_compare_text_to_one_image(client):
    sim = compare(client, subject=TEXTS[2], subject_type="text", prompt=IMAGES[1], prompt_type="image")
    assert isinstance(sim, list) and len(sim) == 1  # one image object: a list of one
    text, image = embed_texts(client, TEXTS[2])[0], embed_images(client, IMAGES[1])[0]
    assert sim[0] == pytest.approx(np_cosine(text, image), abs=1e-5)


def test_compare_text_to_three_images(client):
    sim = compare(client, subject=TEXTS[2], subject_type="text", prompt=IMAGES, prompt_type="image")
    text, images = embed_texts(client, TEXTS[2])[0], embed_images(client, IMAGES)
    np.testing.assert_allclose(sim, [np_cosine(text, i) for i in images], atol=1e-5)


def test_compare_image_to_image(client):
    sim = compare(client, subject=IMAGES[0], prompt=[IMAGES[0], IMAGES[2]], prompt_type="image")
    images = embed_images(client, [IMAGES[0], IMAGES[2]])
    assert sim[0] == pytest.approx(1.0, abs=1e-5)  # an image against itself
    assert sim[1] == pytest.approx(np_cosine(images[0], images[1]), abs=1e-5)


def test_compare_text_to_text(client):
    sim = compare(client, subject=TEXTS[0], subject_type="text", prompt={"same": TEXTS[0], "other": TEXTS[1]})
    rows = embed_texts(client, TEXTS[:2])
    assert list(sim) == ["same", "other"]
    assert sim["same"] == pytest.approx(1.0, abs=1e-6)
    assert sim["other"] == pytest.approx(np_cosine(rows[0], rows[1]), abs=1e-5)


def test_dict_with_type_and_value_is_one_image(client):
    prompt = {"type": "base64", "value": IMAGES[1]["value"]}
    sim = compare(client, subject=IMAGES[0], prompt=prompt, prompt_type="image")
    assert isinstance(sim, list) and len(sim) == 1
    rows = embed_images(client, [IMAGES[0], IMAGES[1]])
    assert sim[0] == pytest.approx(np_cosine(rows[0], rows[1]), abs=1e-5)


def test_dict_with_only_one_of_type_and_value_is_named_prompts(client):
    for prompt in ({"type": TEXTS[0], "other": TEXTS[1]}, {"value": TEXTS[0], "other": TEXTS[1]}):
        sim = compare(client, subject=IMAGES[0], prompt=prompt)
        assert list(sim) == list(prompt)
        np.testing.assert_allclose(list(sim.values()), compare(client, subject=IMAGES[0], prompt=TEXTS[:2]), atol=1e-6)


def test_dict_with_type_and_value_is_an_image_even_for_text_prompts(client):
    """Upstream's rule does not look at prompt_type: such a dict is one image, so a text prompt is refused."""
    body = error(client.post("/clip/compare", json={"subject": IMAGES[0], "prompt": {"type": "a", "value": "b"}}), 400)
    assert set(body) == {"message"}


def test_dict_of_named_image_prompts(client):
    prompt = {"cat": IMAGES[1], "coffee": IMAGES[2]}
    sim = compare(client, subject=IMAGES[0], prompt=prompt, prompt_type="image")
    assert list(sim) == ["cat", "coffee"]
    rows = embed_images(client, IMAGES)
    assert sim["cat"] == pytest.approx(np_cosine(rows[0], rows[1]), abs=1e-5)
    assert sim["coffee"] == pytest.approx(np_cosine(rows[0], rows[2]), abs=1e-5)


def test_bare_base64_strings_where_images_are_expected(client):
    """Upstream infers the type of a bare string subject/prompt when its *_type is "image"."""
    want = compare(client, subject=IMAGES[0], prompt=[IMAGES[1], IMAGES[2]], prompt_type="image")
    got = compare(
        client, subject=IMAGES[0]["value"], prompt=[IMAGES[1]["value"], IMAGES[2]["value"]], prompt_type="image"
    )
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_data_uri_prefix_and_case_insensitive_type(client):
    plain = embed_images(client, IMAGES[0])
    prefixed = {"type": "BASE64", "value": "data:image/png;base64," + IMAGES[0]["value"]}
    np.testing.assert_allclose(embed_images(client, prefixed), plain, atol=1e-6)


# --- ignored and optional inputs -------------------------------------------------------------------


def test_unknown_fields_and_upstream_base_fields_ignored(client):
    extra = {
        "id": "abc",
        "model_id": "clip/ViT-B-16",
        "usage_billable": False,
        "start": 1.5,
        "source": "x",
        "source_info": "y",
        "disable_model_monitoring": True,
        "no_such_field": {"nested": [1, 2]},
        "api_key": None,
    }
    np.testing.assert_allclose(embed_texts(client, TEXTS[0], **extra), embed_texts(client, TEXTS[0]), atol=1e-6)
    image = {**IMAGES[0], "unknown": 1}
    np.testing.assert_allclose(embed_images(client, image, **extra), embed_images(client, IMAGES[0]), atol=1e-6)
    sim = compare(client, subject=IMAGES[0], prompt=TEXTS[0], **extra)
    assert len(sim) == 1


def test_billing_query_params_accepted(client):
    params = {"api_key": "some-key", "countinference": "false", "service_secret": "s3cret"}
    for path, payload, keys in [
        ("/clip/embed_image", {"image": IMAGES[0]}, EMBED_KEYS),
        ("/clip/embed_text", {"text": TEXTS[0]}, EMBED_KEYS),
        ("/clip/compare", {"subject": IMAGES[0], "prompt": TEXTS}, COMPARE_KEYS),
    ]:
        ok(client.post(path, params=params, json=payload), keys)
    ok(client.post("/clip/embed_text", json={"text": "x"}, headers={"Authorization": "Bearer k"}), EMBED_KEYS)


@pytest.mark.parametrize("version", ["absent", None, TINY])
def test_clip_version_id_absent_null_explicit(client, version):
    extra = {} if version == "absent" else {"clip_version_id": version}
    reference = embed_texts(client, TEXTS[1], clip_version_id=TINY)
    np.testing.assert_allclose(embed_texts(client, TEXTS[1], **extra), reference, atol=1e-6)
    assert embed_images(client, IMAGES[0], **extra).shape == (1, DIM)
    assert len(compare(client, subject=IMAGES[0], prompt=TEXTS, **extra)) == 3


# --- 422: the schema -------------------------------------------------------------------------------


def _detail(body: dict) -> list:
    assert set(body) == {"detail"}
    assert isinstance(body["detail"], list) and body["detail"]
    for entry in body["detail"]:
        assert {"type", "loc", "msg"} <= set(entry)
    return body["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "missing"),
    [
        ("/clip/embed_image", {}, "image"),
        ("/clip/embed_text", {"clip_version_id": TINY}, "text"),
        ("/clip/compare", {"prompt": "a"}, "subject"),
        ("/clip/compare", {"subject": "a"}, "prompt"),
    ],
)
def test_422_missing_field(client, path, payload, missing):
    detail = _detail(error(client.post(path, json=payload), 422))
    assert any(d["type"] == "missing" and d["loc"] == ["body", missing] for d in detail), detail


def test_422_bad_json(client):
    r = client.post("/clip/embed_text", content=b'{"text": "a",', headers={"content-type": "application/json"})
    detail = _detail(error(r, 422))
    assert detail[0]["type"] == "json_invalid"
    assert detail[0]["loc"][0] == "body"


def test_422_image_as_a_bare_string(client):
    detail = _detail(error(client.post("/clip/embed_image", json={"image": IMAGES[0]["value"]}), 422))
    assert all(d["loc"][:2] == ["body", "image"] for d in detail)


def test_422_prompt_of_ints(client):
    detail = _detail(error(client.post("/clip/compare", json={"subject": IMAGES[0], "prompt": [1, 2]}), 422))
    assert all(d["loc"][:2] == ["body", "prompt"] for d in detail)


def test_422_text_of_wrong_type(client):
    _detail(error(client.post("/clip/embed_text", json={"text": 5}), 422))
    _detail(error(client.post("/clip/embed_text", json={"text": ["a", None]}), 422))


# --- 400: image load, limits, bad input ------------------------------------------------------------

LOAD = "Could not load input image. Cause:"


def test_400_bad_image_single(client):
    bad = {"type": "base64", "value": pybase64.b64encode(b"definitely not an image").decode()}
    body = error(client.post("/clip/embed_image", json={"image": bad}), 400)
    assert set(body) == {"message"}
    assert body["message"].startswith(LOAD)


def test_400_bad_image_in_a_list_names_the_index(client):
    bad = {"type": "base64", "value": pybase64.b64encode(b"not an image either").decode()}
    body = error(client.post("/clip/embed_image", json={"image": [IMAGES[0], IMAGES[1], bad]}), 400)
    assert body["message"].startswith(LOAD)
    assert "index 2" in body["message"]


def test_400_malformed_base64_and_empty(client):
    for value in ("abc", ""):  # bad padding; empty payload
        body = error(client.post("/clip/embed_image", json={"image": {"type": "base64", "value": value}}), 400)
        assert body["message"].startswith(LOAD)


def test_400_unknown_image_type(client):
    body = error(client.post("/clip/embed_image", json={"image": {"type": "pil", "value": "x"}}), 400)
    assert body["message"].startswith(LOAD)
    assert "not recognised image type" in body["message"]


def test_400_numpy_refused(client):
    payload = pybase64.b64encode(b"\x80\x04\x95 pickle bytes").decode()
    for kind in ("numpy", "NumPy"):
        body = error(client.post("/clip/embed_image", json={"image": {"type": kind, "value": payload}}), 400)
        assert body["message"].startswith(LOAD)
        assert "numpy" in body["message"].lower()
    body = error(
        client.post("/clip/compare", json={"subject": {"type": "numpy", "value": payload}, "prompt": "a"}), 400
    )
    assert body["message"].startswith(LOAD)


def test_400_more_than_8_images(client):
    ok(client.post("/clip/embed_image", json={"image": [IMAGES[0]] * 8}), EMBED_KEYS)
    body = error(client.post("/clip/embed_image", json={"image": [IMAGES[0]] * 9}), 400)
    assert "8" in body["message"] and "images" in body["message"]


def test_400_more_than_8_prompts(client):
    assert len(compare(client, subject=IMAGES[0], prompt=[f"p{i}" for i in range(8)])) == 8
    for prompt in ([f"p{i}" for i in range(9)], {f"k{i}": f"p{i}" for i in range(9)}):
        body = error(client.post("/clip/compare", json={"subject": IMAGES[0], "prompt": prompt}), 400)
        assert "8" in body["message"] and "prompts" in body["message"]
    body = error(
        client.post(
            "/clip/compare",
            json={"subject": TEXTS[0], "subject_type": "text", "prompt": [IMAGES[0]] * 9, "prompt_type": "image"},
        ),
        400,
    )
    assert "8" in body["message"]


def _long_text(n_words: int) -> str:
    return " ".join(["a"] * n_words)  # "a" is one BPE token: n_words + sot + eot tokens


def test_400_text_over_77_tokens_model_input_error_shape(client):
    assert embed_texts(client, _long_text(75)).shape == (1, DIM)  # exactly 77 tokens
    body = error(client.post("/clip/embed_text", json={"text": ["short", _long_text(76)]}), 400)
    assert set(body) == {"message", "help_url"}
    assert body["message"].startswith("Error with model input. Cause: Text input is too long")
    assert body["help_url"].startswith("https://")
    body = error(client.post("/clip/compare", json={"subject": IMAGES[0], "prompt": [_long_text(200)]}), 400)
    assert set(body) == {"message", "help_url"}


def test_truncate_extension(client):
    long = _long_text(300)
    rows = embed_texts(client, long, truncate=True)
    np.testing.assert_allclose(rows, embed_texts(client, _long_text(75)), atol=1e-5)  # open_clip's truncation
    sim = compare(client, subject=IMAGES[0], prompt=[long], truncate=True)
    assert len(sim) == 1


def test_404_unknown_version_names_the_served_ones(client):
    for path, payload in [
        ("/clip/embed_text", {"text": "a"}),
        ("/clip/embed_image", {"image": IMAGES[0]}),
        ("/clip/compare", {"subject": IMAGES[0], "prompt": "a"}),
    ]:
        body = error(client.post(path, json={**payload, "clip_version_id": "ViT-H-99"}), 404)
        assert set(body) == {"message"}
        assert "ViT-H-99" in body["message"] and TINY in body["message"]


@pytest.mark.parametrize(
    "payload",
    [{"subject_type": "video"}, {"prompt_type": "audio"}, {"subject_type": "Image"}, {"prompt_type": ""}],
)
def test_400_bad_subject_or_prompt_type(client, payload):
    body = error(client.post("/clip/compare", json={"subject": IMAGES[0], "prompt": "a", **payload}), 400)
    assert set(body) == {"message"}
    assert "image" in body["message"] and "text" in body["message"]


def test_400_image_object_where_text_is_expected(client):
    body = error(client.post("/clip/compare", json={"subject": IMAGES[0], "subject_type": "text", "prompt": "a"}), 400)
    assert set(body) == {"message"}


def test_no_bad_input_gives_5xx(client):
    payloads = [
        ("/clip/embed_image", {"image": []}),
        ("/clip/embed_text", {"text": []}),
        ("/clip/compare", {"subject": IMAGES[0], "prompt": []}),
        ("/clip/compare", {"subject": IMAGES[0], "prompt": {}}),
        ("/clip/embed_image", {"image": {"type": "base64", "value": 12}}),
        ("/clip/embed_image", {"image": {"type": "base64"}}),
        ("/clip/compare", {"subject": "not base64 at all!", "prompt": "a"}),
    ]
    for path, payload in payloads:
        r = client.post(path, json=payload)
        assert 400 <= r.status_code < 500, (payload, r.status_code, r.text)
        assert "message" in r.json() or "detail" in r.json()


# --- operations ------------------------------------------------------------------------------------


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200


def test_readiness_lists_versions(client):
    r = client.get("/readiness")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and TINY in body["versions"]


def test_info_lists_the_tiny_random_model(client):
    body = client.get("/info").json()
    assert body["default_clip_version_id"] == TINY
    assert body["random_weights"] is True
    tiny = {v["clip_version_id"]: v for v in body["versions"]}[TINY]
    assert tiny["weights_random"] is True
    assert tiny["embedding_dim"] == DIM and tiny["image_size"] == 64 and tiny["context_length"] == 77
    assert "api_keys" not in body["settings"]


def test_docs_and_openapi(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    spec = client.get("/openapi.json").json()
    for path in ("/clip/embed_image", "/clip/embed_text", "/clip/compare"):
        assert "post" in spec["paths"][path]
    assert "ClipCompareRequest" in spec["components"]["schemas"]


def test_metrics_count_requests(client):
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert "clip_gateway_requests_total" in r.text
    assert 'route="/healthz"' in r.text


def test_time_is_seconds_and_finite(client):
    body = ok(client.post("/clip/embed_text", json={"text": TEXTS}), EMBED_KEYS)
    assert math.isfinite(body["time"]) and body["time"] < 10
