"""Each family served through /clip/* equals eager open_clip with the same weights (cos >= 0.99999).

References are open_clip's own `create_model_and_transforms` + `get_tokenizer` for the same name
and pretrained tag (tests/families/conftest.py), on PIL images through open_clip's eval transform;
nothing in a reference comes from gateway/ or triton_clip/. Each parity claim has a sensitivity
test beside it showing the variant the gateway must not run (bucketed input of a non-causal tower,
the wrong cleaning, the default CLIP preprocessing, an EVA tower without its rotary position
embeddings) gives another answer.
"""

from __future__ import annotations

import httpx
import numpy as np
import pybase64
import pytest
import torch

from gateway.contract import text_buckets
from gateway.images.decode import image_to_tensor
from gateway.text.hf_tokenize import HFTokenizer
from gateway.text.registry import TokenizerRegistry
from gateway.triton import TritonClient
from gateway.version_info import versions_from_configs
from tests.families.conftest import BY_VERSION, EVA, FAMILIES, SIGLIP2
from tests.integration.test_parity import OVER, TEXTS, compare_rows, encode, opened, photo

MIN_COSINE = 0.99999
VERSIONS = [f.version for f in FAMILIES]
NON_CAUSAL = [f.version for f in FAMILIES if not f.causal]
SHORT = ["a photo of a dog", "", "A Diagram: of 3 things!", "Ünïcödé café 🐶"]
# Landscape, portrait, grayscale and tiny: squash and shortest-side crops differ on all but squares.
IMAGES = {
    "chelsea-451x300": encode(photo("chelsea"), "JPEG"),
    "rocket-427x640": encode(photo("rocket"), "JPEG"),
    "camera-gray-333x129": encode(photo("camera", (333, 129)), "PNG"),
    "coffee-97x61": encode(photo("coffee", (97, 61)), "PNG"),
}


@pytest.fixture(scope="module")
def client(family_gateway):
    with httpx.Client(base_url=family_gateway.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def served(family_triton) -> dict:
    names = [m["name"] for m in httpx.post(family_triton.url("/v2/repository/index"), json={}, timeout=10).json()]
    configs = [httpx.get(family_triton.url(f"/v2/models/{n}/config"), timeout=10).json() for n in names]
    found = versions_from_configs(configs)
    found["_configs"] = {c["name"]: c for c in configs}
    return found


@pytest.fixture(scope="module")
async def gateway_tokenizers(family_triton, served) -> dict:
    """The tokenizers the gateway builds, the HF file fetched from Triton exactly as the gateway does."""
    registry, triton = TokenizerRegistry(), TritonClient(family_triton.grpc, 30)
    try:
        for version, info in served.items():
            if version == "_configs":
                continue
            assert await registry.prepare(info, triton.fetch_file) is None
    finally:
        await triton.close()
    return {v: registry.get(info) for v, info in served.items() if v != "_configs"}


def _config(served: dict, version: str, tower: str) -> dict:
    return served["_configs"][getattr(served[version], f"{tower}_model")].get("parameters", {})


def route(version: str, operation: str) -> tuple[str, str]:
    """(path, version field): Perception Encoder versions live on /perception_encoder/*, the rest on /clip/*."""
    if BY_VERSION[version].family == "pe-core":
        return f"/perception_encoder/{operation}", "perception_encoder_version_id"
    return f"/clip/{operation}", "clip_version_id"


def embed_texts(client: httpx.Client, version: str, texts: list[str], truncate: bool = True) -> np.ndarray:
    path, field = route(version, "embed_text")
    r = client.post(path, json={"text": texts, field: version, "truncate": truncate})
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["embeddings"])


def eager_text(eager, version: str, ids) -> np.ndarray:
    with torch.inference_mode():
        return eager[version][0].encode_text(ids).float().numpy()


def assert_rows_match(got: np.ndarray, want: np.ndarray, labels: list[str]) -> None:
    assert got.shape == want.shape
    for label, g, w in zip(labels, got, want, strict=True):
        cos, diff = compare_rows(g, w)
        assert cos >= MIN_COSINE, f"{label!r}: cosine {cos:.9f}, max abs diff {diff:.3e}"


@pytest.mark.parametrize("version", VERSIONS)
def test_info_reports_what_the_model_needs(version, client, eager) -> None:
    model, _, tokenizer = eager[version]
    info = {v["clip_version_id"]: v for v in client.get("/info").json()["versions"]}[version]
    pre = eager[version][0].visual.preprocess_cfg
    family = BY_VERSION[version]
    assert info["family"] == family.family
    assert info["context_length"] == tokenizer.context_length == model.context_length
    assert info["image_size"] == (pre["size"][0] if isinstance(pre["size"], tuple) else pre["size"])
    assert (info["resize_mode"], info["interpolation"]) == (pre["resize_mode"], pre["interpolation"])
    assert info["tokenizer"] == ("hf" if version == SIGLIP2 else "clip-bpe")
    assert info["text_clean"] == ("canonicalize" if version == SIGLIP2 else "lower")
    expected_buckets = list(text_buckets(tokenizer.context_length)) if family.causal else [tokenizer.context_length]
    assert info["text_buckets"] == expected_buckets


@pytest.mark.parametrize("version", VERSIONS)
def test_token_ids_identical_to_open_clip(version, gateway_tokenizers, served, eager) -> None:
    texts = TEXTS + OVER
    want = eager[version][2](texts).numpy()  # open_clip truncates silently
    got = gateway_tokenizers[version].batch(texts, truncate=True, buckets=served[version].text_buckets[-1:])
    mismatched = [t for t, g, w in zip(texts, got, want, strict=True) if not np.array_equal(g, w)]
    assert not mismatched


@pytest.mark.parametrize("version", VERSIONS)
def test_served_text_embeddings_match_eager_open_clip(version, client, eager) -> None:
    for texts in (TEXTS + OVER, SHORT):  # one tensor at the full context, and (causal) one at bucket 16
        want = eager_text(eager, version, eager[version][2](texts))
        assert_rows_match(embed_texts(client, version, texts), want, texts)


@pytest.mark.parametrize("version", VERSIONS)
def test_served_image_embeddings_match_eager_open_clip(version, client, eager) -> None:
    model, transform, _ = eager[version]
    path, field = route(version, "embed_image")
    payload = {
        "image": [{"type": "base64", "value": pybase64.b64encode(d).decode()} for d in IMAGES.values()],
        field: version,
    }
    r = client.post(path, json=payload)
    assert r.status_code == 200, r.text
    with torch.inference_mode():
        want = model.encode_image(torch.stack([transform(opened(d)) for d in IMAGES.values()])).float().numpy()
    assert_rows_match(np.asarray(r.json()["embeddings"]), want, list(IMAGES))


@pytest.mark.parametrize("version", VERSIONS)
def test_gateway_tensor_is_the_familys_transform(version, served, family_open_clip, eager) -> None:
    """The uint8 tensor equals open_clip's own transform (before Normalize); CLIP's default one would differ.

    Mean/std live in the image tower (checked against the model's cfg here); random towers barely
    react to them, so the tensor-level check is what shows a wrong resize would be caught.
    """
    from torchvision.transforms import Compose

    pre = eager[version][0].visual.preprocess_cfg
    image_cfg = {k: v["string_value"] for k, v in _config(served, version, "image").items()}
    assert image_cfg["mean"] == ",".join(map(str, pre["mean"])) and image_cfg["std"] == ",".join(map(str, pre["std"]))
    size = pre["size"][0] if isinstance(pre["size"], tuple) else pre["size"]
    for name, data in IMAGES.items():
        got = image_to_tensor(data, served[version].preprocess, max_pixels=40_000_000)
        want = eager[version][1]
        want = (Compose(want.transforms[:-1])(opened(data)) * 255).round().to(torch.uint8).numpy()
        assert np.array_equal(got, want), name
    if (pre["resize_mode"], pre["interpolation"]) == ("shortest", "bicubic"):
        return  # CLIP's own preprocessing (EVA): the default transform is the right one
    default = family_open_clip.image_transform(size, is_train=False)
    wrong = (Compose(default.transforms[:-1])(opened(IMAGES["rocket-427x640"])) * 255).round().to(torch.uint8).numpy()
    assert not np.array_equal(
        image_to_tensor(IMAGES["rocket-427x640"], served[version].preprocess, max_pixels=40_000_000), wrong
    )


@pytest.mark.parametrize("version", NON_CAUSAL)
def test_non_causal_tower_is_never_bucketed(version, client, eager) -> None:
    """A 16-token input would change a bidirectional tower's embedding; the served one is the full-context one."""
    ids = eager[version][2](SHORT)
    full = eager_text(eager, version, ids)
    bucketed = eager_text(eager, version, ids[:, :16])
    worst = min(compare_rows(b, f)[0] for b, f in zip(bucketed, full, strict=True))
    assert worst < 0.9999, f"bucketing would not change this tower (cos {worst:.6f}): the test is blind"
    assert_rows_match(embed_texts(client, version, SHORT), full, SHORT)


def test_eva_rotary_embeddings_matter(client, eager) -> None:
    """Sensitivity: the EVA tower without its 2-D rotary position embeddings (a tower that dropped or
    froze them wrongly when made TorchScript) gives another embedding; the served one is the eager one."""
    import copy

    model, transform, _ = eager[EVA]
    assert model.visual.trunk.rope is not None, "the EVA fixture lost its rotary embeddings: the test is blind"
    no_rope = copy.deepcopy(model)
    no_rope.visual.trunk.rope = None
    pixels = torch.stack([transform(opened(d)) for d in IMAGES.values()])
    with torch.inference_mode():
        want, wrong = model.encode_image(pixels).float().numpy(), no_rope.encode_image(pixels).float().numpy()
    worst = min(compare_rows(w, x)[0] for w, x in zip(wrong, want, strict=True))
    assert worst < 0.9999, f"dropping rotary embeddings does not change this tower (cos {worst:.6f})"
    payload = {
        "image": [{"type": "base64", "value": pybase64.b64encode(d).decode()} for d in IMAGES.values()],
        "clip_version_id": EVA,
    }
    r = client.post("/clip/embed_image", json=payload)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["embeddings"])
    assert_rows_match(got, want, list(IMAGES))
    assert all(compare_rows(g, x)[0] < 0.9999 for g, x in zip(got, wrong, strict=True))


def test_siglip_cleaning_matters(gateway_tokenizers, served, family_triton) -> None:
    """Sensitivity: CLIP-style 'lower' cleaning instead of SigLIP's canonicalize gives other ids."""
    hf = gateway_tokenizers[SIGLIP2]
    text = ["A Photo, of a DOG!"]
    lower = HFTokenizer(_tokenizer_bytes(served, family_triton), "lower")
    assert not np.array_equal(lower.batch(text), hf.batch(text))


def _tokenizer_bytes(served, family_triton) -> bytes:
    """The tokenizer.json as Triton serves it (HTTP/JSON here, the gateway uses gRPC)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(family_triton.http)
    request = httpclient.InferInput("request__0", [1, 1], "UINT8")
    request.set_data_from_numpy(np.zeros((1, 1), dtype=np.uint8), binary_data=True)
    result = client.infer(served[SIGLIP2].tokenizer_model, [request])
    return result.as_numpy("file__0")[0].tobytes()


@pytest.mark.parametrize("version", VERSIONS)
def test_over_context_is_a_clear_400_unless_truncate(version, client, eager) -> None:
    long_text = "word " * 80
    path, field = route(version, "embed_text")
    r = client.post(path, json={"text": long_text, field: version})
    assert r.status_code == 400 and "too long" in r.json()["message"]
    got = embed_texts(client, version, [long_text])
    assert_rows_match(got, eager_text(eager, version, eager[version][2]([long_text])), [long_text])
