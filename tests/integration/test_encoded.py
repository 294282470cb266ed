"""The encoded image transport on the real tritonserver: `bytes -> preprocessing -> image tower`, decoded in Triton.

A second gateway with GATEWAY_IMAGE_TRANSPORT=encoded runs next to the session's (tensor) one, both in front of
the session Triton (the exporter writes every version's preprocessing model and ensemble). On the CPU target the
preprocessing model runs the gateway's own Pillow code, so:

* every file of the parity set (test_parity's photos: EXIF-rotated, gray, odd sizes; plus palette, 16-bit,
  alpha, CMYK) embeds BIT-IDENTICALLY through both transports, and really went through the ensemble;
* a bad image gives the same 400, body and failing index included, whether the gateway (header) or Triton
  (decode) found it; Triton's own failure counter proves the decode failure came from inside Triton;
* concurrent single-image requests are still merged by Triton's dynamic batchers (preprocessing and tower).
"""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pybase64
import pytest
from PIL import Image

from gateway.contract import encoded_model_names
from tests.conftest import start_gateway, stop_process
from tests.integration.payloads import png_claiming
from tests.integration.test_batching import burst, triton_counts
from tests.integration.test_parity import CASES, encode, photo

pytestmark = pytest.mark.timeout(300)
TINY = "clip-tiny"
PREPROCESS, ENSEMBLE = encoded_model_names(TINY)


def _extra_cases() -> dict[str, bytes]:
    base = photo("astronaut", (150, 110))
    alpha = Image.linear_gradient("L").resize(base.size)
    gray16 = Image.fromarray((np.asarray(photo("camera", (90, 70))).astype(np.uint16) * 257), "I;16")
    out = {
        "palette-png": encode(base.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "palette-transparency-gif": encode(base.convert("P"), "GIF"),
        "rgba-png": encode(Image.merge("RGBA", (*base.split(), alpha)), "PNG"),
        "la-png": encode(Image.merge("LA", (base.convert("L"), alpha)), "PNG"),
        "gray16-png": encode(gray16, "PNG"),
        "cmyk-jpeg": encode(base.convert("CMYK"), "JPEG"),
        "webp": encode(base, "WEBP"),
    }
    assert Image.open(io.BytesIO(out["gray16-png"])).mode == "I;16"
    return out


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    out = {case_id: encode(make(), fmt, orient) for case_id, make, fmt, orient in CASES}
    out.update(_extra_cases())
    return out


@pytest.fixture(scope="module")
def encoded_gateway(triton, tmp_path_factory):
    server = start_gateway(
        triton, tmp_path_factory.mktemp("gw-encoded") / "gateway.log", GATEWAY_IMAGE_TRANSPORT="encoded"
    )
    try:
        yield server
    finally:
        stop_process(server.proc)


def b64(data: bytes) -> dict:
    return {"type": "base64", "value": pybase64.b64encode(data).decode()}


def post(gateway, path: str, payload: dict) -> httpx.Response:
    return httpx.post(f"{gateway.base_url}{path}", json=payload, timeout=60)


def fail_count(triton, model: str) -> int:
    stats = httpx.get(triton.url(f"/v2/models/{model}/stats"), timeout=10).json()["model_stats"]
    return sum(int(s["inference_stats"]["fail"]["count"]) for s in stats)


def test_info_says_which_transport(encoded_gateway, gateway):
    encoded = {v["clip_version_id"]: v for v in httpx.get(f"{encoded_gateway.base_url}/info").json()["versions"]}
    tensor = {v["clip_version_id"]: v for v in httpx.get(f"{gateway.base_url}/info").json()["versions"]}
    assert encoded[TINY]["image_transport"] == "encoded" and encoded[TINY]["encoded_model"] == ENSEMBLE
    assert tensor[TINY]["image_transport"] == "tensor"  # the default, although the ensemble is there
    assert httpx.get(f"{encoded_gateway.base_url}/readiness").status_code == 200


def test_embeddings_bit_identical_to_the_tensor_transport(files, encoded_gateway, gateway, triton):
    before = triton_counts(triton, PREPROCESS)[0]
    for case_id, data in files.items():  # one at a time: both towers run the same batch of one
        want = post(gateway, "/clip/embed_image", {"image": b64(data)})
        got = post(encoded_gateway, "/clip/embed_image", {"image": b64(data)})
        assert want.status_code == got.status_code == 200, (case_id, want.text, got.text)
        assert got.json()["embeddings"] == want.json()["embeddings"], f"{case_id}: embeddings differ"
    assert triton_counts(triton, PREPROCESS)[0] - before == len(files)  # every one was decoded inside Triton


def test_list_and_compare_through_the_ensemble(files, encoded_gateway, gateway):
    ids = list(files)[:6]
    want = post(gateway, "/clip/embed_image", {"image": [b64(files[i]) for i in ids]})
    got = post(encoded_gateway, "/clip/embed_image", {"image": [b64(files[i]) for i in ids]})
    assert want.status_code == got.status_code == 200, got.text
    np.testing.assert_allclose(got.json()["embeddings"], want.json()["embeddings"], rtol=1e-5, atol=1e-6)
    body = {"subject": b64(files[ids[0]]), "subject_type": "image", "prompt": ["a cat", "a dog"]}
    want, got = post(gateway, "/clip/compare", body), post(encoded_gateway, "/clip/compare", body)
    assert want.status_code == got.status_code == 200, got.text
    np.testing.assert_allclose(got.json()["similarity"], want.json()["similarity"], atol=1e-6)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("bad", ["truncated-jpeg", "truncated-png", "not-image", "too-many-pixels", "empty-idat"])
def test_bad_image_same_400_with_its_index(bad, files, encoded_gateway, gateway, triton):
    good = files["chelsea-451x300-jpeg"]
    data = {
        "truncated-jpeg": lambda: _truncated(files["coffee-1001x667-jpeg"]),  # header fine: fails inside Triton
        "truncated-png": lambda: _truncated(files["coffee-600x400-png"]),
        "not-image": lambda: b"definitely not an image",
        "too-many-pixels": lambda: png_claiming(20_000, 20_000),
        "empty-idat": lambda: png_claiming(64, 64, with_data=True),  # valid header, broken pixel data
    }[bad]()
    payload = {"image": [b64(good), b64(data), b64(good)]}
    failed_before = fail_count(triton, ENSEMBLE)
    want, got = post(gateway, "/clip/embed_image", payload), post(encoded_gateway, "/clip/embed_image", payload)
    assert want.status_code == 400, want.text
    assert (got.status_code, got.json()) == (want.status_code, want.json())
    assert "image at index 1" in got.json()["message"]
    if bad.startswith("truncated") or bad == "empty-idat":  # the header passed in the gateway: Triton refused it
        assert fail_count(triton, ENSEMBLE) > failed_before
    single = {"image": b64(data)}
    want, got = post(gateway, "/clip/embed_image", single), post(encoded_gateway, "/clip/embed_image", single)
    assert (got.status_code, got.json()) == (want.status_code, want.json()) and got.status_code == 400
    assert post(encoded_gateway, "/clip/embed_image", {"image": b64(good)}).status_code == 200  # still serving


def test_concurrent_encoded_requests_are_batched_by_triton(files, encoded_gateway, triton):
    images = [photo("astronaut", (80 + i, 80)) for i in range(32)]
    payloads = [{"image": b64(encode(img, "PNG"))} for img in images]
    asyncio.run(burst(encoded_gateway.base_url, "/clip/embed_image", payloads[16:]))  # unmeasured warm-up
    before = {m: triton_counts(triton, m) for m in (PREPROCESS, f"clip-{TINY}-image")}
    responses = asyncio.run(burst(encoded_gateway.base_url, "/clip/embed_image", payloads[:16]))
    after = {m: triton_counts(triton, m) for m in before}
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    for model in before:
        requests, executions = (after[model][k] - before[model][k] for k in (0, 1))
        print(f"{model}: 16 concurrent requests -> {executions} executions")
        assert requests == 16
        assert executions < requests, f"{model}: {executions} executions for {requests} requests: no batching"
