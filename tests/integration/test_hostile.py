"""Hostile-input battery against the real gateway (uvicorn) in front of the real Triton.

Every malformed request gets a 4xx with a JSON body (never a 5xx, never a hang), and the gateway
serves a normal request right after each one. Expected statuses follow the contract:
422 = FastAPI schema errors (upstream's shape), 400 = bad images/values/limits, 404 = unknown
version, 413 = body or text count too large.

Decided behaviours that are NOT errors (tested at the bottom): an animated GIF embeds its first
frame (as OpenCV's imdecode does upstream); a float TIFF holding NaN/inf samples embeds with
finite values (samples are saturated the way OpenCV converts to 8 bit); 2-pixel sides and very
elongated images within the pixel cap embed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.integration.payloads import (
    SVG,
    animated_gif,
    b64,
    bmp_claiming,
    float_tiff_with_nan,
    gif_claiming,
    image,
    noise_jpeg,
    png_bytes,
    png_claiming,
    raw_http,
    still_gif,
)

pytestmark = pytest.mark.timeout(120)

I, T, C = "/clip/embed_image", "/clip/embed_text", "/clip/compare"  # noqa: E741 - short route names
IMAGE_ERROR = "Could not load input image. Cause: "
GOOD_PNG = png_bytes()
_JPEG = noise_jpeg()
_PNG64 = png_bytes(64, 64)
LONG_TEXT = "a photo of a cat " * 40  # ~160 tokens, far under the character cap
MAX_BODY = 32 * 1024 * 1024  # the session gateway runs with the default GATEWAY_MAX_BODY_BYTES


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: bytes | object  # bytes are sent as-is; anything else is JSON-encoded
    status: int
    contains: str = ""  # a substring the error message must hold
    headers: dict[str, str] = field(default_factory=dict)
    raw: str = ""  # "content-length" | "chunked": built by hand on a socket

    def content(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def img(value: object, type_: object = "base64") -> dict[str, object]:
    return {"type": type_, "value": value}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


CASES = [
    # --- transport and JSON level ---------------------------------------------------------------
    Case("malformed-json", I, b'{"image": ', 422),
    Case("empty-body", T, b"", 422),
    Case("body-json-array", C, b"[]", 422),
    Case("body-json-null", I, b"null", 422),
    Case("body-json-string", T, b'"a cat"', 422),
    Case("body-json-number", C, b"42", 422),
    Case("body-invalid-utf8", I, b'{"image": "\xc3\x28"}', 400),
    Case("deeply-nested-json-900", T, b'{"text": ' + nested(900) + b"}", 422),
    Case("deeply-nested-json-100k", C, b'{"subject": "x", "prompt": ' + nested(100_000) + b"}", 400),
    Case("huge-int-30-digits", T, b'{"text": ' + b"9" * 30 + b"}", 422),
    Case("huge-int-past-python-limit", T, b'{"text": ' + b"9" * 10_000 + b"}", 400),
    Case("float-overflow", I, b'{"image": 1e999999}', 422),
    Case("nan-token", T, b'{"text": NaN}', 422),
    Case("infinity-bool", C, b'{"subject": "x", "prompt": "a", "truncate": Infinity}', 422),
    Case("trailing-garbage", T, b'{"text": "a"} xyz', 422),
    Case("content-type-text-plain", T, b'{"text": "a"}', 422, headers={"content-type": "text/plain"}),
    Case("content-type-form", I, b"image=abc", 422, headers={"content-type": "application/x-www-form-urlencoded"}),
    Case(
        "content-type-multipart",
        C,
        b"--x\r\n\r\n--x--\r\n",
        422,
        headers={"content-type": "multipart/form-data; boundary=x"},
    ),
    Case("oversized-by-content-length", I, b"", 413, "larger than", raw="content-length"),
    Case("oversized-chunked", T, b"", 413, "larger than", raw="chunked"),
    # --- embed_image: schema ---------------------------------------------------------------------
    Case("image-missing", I, {}, 422),
    Case("image-null", I, {"image": None}, 422),
    Case("image-string-not-object", I, {"image": b64(GOOD_PNG)}, 422),
    Case("image-number", I, {"image": 7}, 422),
    Case("image-empty-object", I, {"image": {}}, 422),
    Case("image-type-null", I, {"image": img("x", None)}, 422),
    Case("image-type-number", I, {"image": img("x", 5)}, 422),
    Case("image-list-with-null", I, {"image": [image(GOOD_PNG), None]}, 422),
    Case("image-list-of-strings", I, {"image": ["a", "b"]}, 422),
    Case("image-value-number", I, {"image": img(12345)}, 400, IMAGE_ERROR),
    Case("image-value-list", I, {"image": img([b64(GOOD_PNG)])}, 400, IMAGE_ERROR),
    Case("image-value-null", I, {"image": img(None)}, 400, IMAGE_ERROR),
    Case("image-value-object", I, {"image": img({"value": b64(GOOD_PNG)})}, 400, IMAGE_ERROR),
    Case("image-type-numpy-refused", I, {"image": img("gASVAAAAAA==", "numpy")}, 400, "pickle"),
    Case("image-type-file", I, {"image": img("/etc/passwd", "file")}, 400, "not recognised image type"),
    Case("image-type-multipart", I, {"image": img("x", "multipart")}, 400, "not recognised image type"),
    Case("image-type-unknown", I, {"image": img("x", "gopher")}, 400, "not recognised image type"),
    Case("image-empty-list", I, {"image": []}, 400),
    Case("image-nine-images", I, {"image": [image(GOOD_PNG)] * 9}, 400, "at once is 8"),
    Case("image-unknown-version", I, {"image": image(GOOD_PNG), "clip_version_id": "ViT-Z-99"}, 404, "not served"),
    Case("image-version-number", I, {"image": image(GOOD_PNG), "clip_version_id": 16}, 422),
    # --- embed_image: bytes ----------------------------------------------------------------------
    Case("base64-bad-padding", I, {"image": img("abc")}, 400, "Malformed base64"),
    Case("base64-non-ascii", I, {"image": img("ééé")}, 400, IMAGE_ERROR),
    Case("base64-empty-string", I, {"image": img("")}, 400, "Empty image payload"),
    Case("base64-no-alphabet-chars", I, {"image": img("!!!!")}, 400, IMAGE_ERROR),
    Case("non-image-bytes", I, {"image": image(b"%PDF-1.4\n%hostile\n")}, 400, "Data is not image"),
    Case("svg-xml-data-uri", I, {"image": img("data:image/svg+xml;base64," + b64(SVG))}, 400, IMAGE_ERROR),
    Case("svg-data-uri", I, {"image": img("data:image/svg;base64," + b64(SVG))}, 400, "Data is not image"),
    Case("png-header-100000x100000", I, {"image": image(png_claiming(100_000, 100_000))}, 400, "too many pixels"),
    Case("png-30000x30000-with-data", I, {"image": image(png_claiming(30_000, 30_000, True))}, 400, "too many pixels"),
    Case("gif-header-65535x65535", I, {"image": image(gif_claiming(65_535, 65_535))}, 400, "too many pixels"),
    Case("bmp-header-100000x100000", I, {"image": image(bmp_claiming(100_000, 100_000))}, 400, IMAGE_ERROR),
    Case("bmp-negative-size", I, {"image": image(bmp_claiming(-5, -5))}, 400, IMAGE_ERROR),
    Case("image-1x1", I, {"image": image(png_bytes(1, 1))}, 400, "too small"),
    Case("image-0x0", I, {"image": image(png_claiming(0, 0))}, 400, IMAGE_ERROR),
    Case("image-0x10", I, {"image": image(png_claiming(0, 10))}, 400, IMAGE_ERROR),
    Case("image-1x100000-header", I, {"image": image(png_claiming(1, 100_000))}, 400, "too small"),
    Case("truncated-jpeg", I, {"image": image(_JPEG[: len(_JPEG) // 2])}, 400, "Data is not image"),
    Case("truncated-png", I, {"image": image(_PNG64[:60])}, 400, "Data is not image"),
    Case("jpeg-soi-only", I, {"image": image(b"\xff\xd8\xff")}, 400, "Data is not image"),
    Case("url-http", I, {"image": img("http://images.example.com/a.png", "url")}, 400, "non https"),
    Case("url-ftp", I, {"image": img("ftp://images.example.com/a.png", "url")}, 400, "non https"),
    Case("url-localhost", I, {"image": img("https://localhost/a.png", "url")}, 400, "without FQDN"),
    Case("url-loopback-ip", I, {"image": img("https://127.0.0.1/a.png", "url")}, 400, "without FQDN"),
    Case("url-ipv6-loopback", I, {"image": img("https://[::1]/a.png", "url")}, 400, "without FQDN"),
    Case("url-empty", I, {"image": img("", "url")}, 400, IMAGE_ERROR),
    Case("url-no-host", I, {"image": img("https:///a.png", "url")}, 400, IMAGE_ERROR),
    Case("url-with-space", I, {"image": img("https://exa mple.com/a.png", "url")}, 400, IMAGE_ERROR),
    Case(
        "one-bad-image-in-list", I, {"image": [image(GOOD_PNG), img("abc"), image(GOOD_PNG)]}, 400, "image at index 1"
    ),
    # --- embed_text -----------------------------------------------------------------------------
    Case("text-missing", T, {"clip_version_id": None}, 422),
    Case("text-null", T, {"text": None}, 422),
    Case("text-number", T, {"text": 3.5}, 422),
    Case("text-object", T, {"text": {"a": "b"}}, 422),
    Case("text-list-with-int", T, {"text": ["a", 1]}, 422),
    Case("text-list-with-null", T, {"text": ["a", None]}, 422),
    Case("text-nested-list", T, {"text": [["a"]]}, 422),
    Case("text-empty-list", T, {"text": []}, 400),
    Case("text-over-4096-chars", T, {"text": "x" * 4097}, 400, "limit is 4096"),
    Case("text-over-context", T, {"text": LONG_TEXT}, 400, "too long for the model context"),
    Case("text-2000-texts", T, {"text": [f"t{i}" for i in range(2000)]}, 413, "1024"),
    Case("text-truncate-not-bool", T, {"text": "a", "truncate": "maybe"}, 422),
    Case("text-unknown-version", T, {"text": "a", "clip_version_id": "RN50"}, 404, "not served"),
    # --- compare --------------------------------------------------------------------------------
    Case("compare-subject-missing", C, {"prompt": "a"}, 422),
    Case("compare-prompt-missing", C, {"subject": image(GOOD_PNG)}, 422),
    Case("compare-subject-null", C, {"subject": None, "prompt": "a"}, 422),
    Case("compare-prompt-null", C, {"subject": image(GOOD_PNG), "prompt": None}, 422),
    Case("compare-prompt-ints", C, {"subject": image(GOOD_PNG), "prompt": [1, 2]}, 422),
    Case("compare-prompt-mixed-list", C, {"subject": image(GOOD_PNG), "prompt": ["a", image(GOOD_PNG)]}, 422),
    Case("compare-named-prompt-int", C, {"subject": image(GOOD_PNG), "prompt": {"cat": 1}}, 422),
    Case("compare-subject-type-number", C, {"subject": image(GOOD_PNG), "prompt": "a", "subject_type": 1}, 422),
    Case(
        "compare-subject-type-video",
        C,
        {"subject": image(GOOD_PNG), "prompt": "a", "subject_type": "video"},
        400,
        "subject_type",
    ),
    Case(
        "compare-prompt-type-audio",
        C,
        {"subject": image(GOOD_PNG), "prompt": "a", "prompt_type": "audio"},
        400,
        "prompt_type",
    ),
    Case("compare-empty-prompt-list", C, {"subject": image(GOOD_PNG), "prompt": []}, 400),
    Case("compare-empty-named-prompts", C, {"subject": image(GOOD_PNG), "prompt": {}}, 400),
    Case(
        "compare-nine-prompts",
        C,
        {"subject": image(GOOD_PNG), "prompt": [f"p{i}" for i in range(9)]},
        400,
        "at once is 8",
    ),
    Case(
        "compare-text-subject-is-image",
        C,
        {"subject": image(GOOD_PNG), "subject_type": "text", "prompt": "a"},
        400,
        "must be strings",
    ),
    Case(
        "compare-image-prompts-garbage",
        C,
        {"subject": image(GOOD_PNG), "prompt": ["zz", "yy"], "prompt_type": "image"},
        400,
        IMAGE_ERROR,
    ),
    Case(
        "compare-image-prompt-http-url",
        C,
        {"subject": image(GOOD_PNG), "prompt": "http://example.com/a.png", "prompt_type": "image"},
        400,
        "non https",
    ),
    Case("compare-subject-numpy", C, {"subject": img("gASV", "numpy"), "prompt": "a"}, 400, "pickle"),
    Case("compare-subject-garbage-string", C, {"subject": "not an image", "prompt": "a"}, 400, IMAGE_ERROR),
    Case(
        "compare-named-image-prompt-bad",
        C,
        {"subject": image(GOOD_PNG), "prompt_type": "image", "prompt": {"ok": image(GOOD_PNG), "bad": img("abc")}},
        400,
        IMAGE_ERROR,
    ),
    Case(
        "compare-text-prompt-over-4096",
        C,
        {"subject": image(GOOD_PNG), "prompt": ["a", "y" * 5000]},
        400,
        "limit is 4096",
    ),
    Case(
        "compare-text-subject-over-context",
        C,
        {"subject": LONG_TEXT, "subject_type": "text", "prompt": "a"},
        400,
        "too long for the model context",
    ),
]


def test_battery_is_large_and_distinct() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len({(c.path, c.content(), tuple(sorted(c.headers.items())), c.raw) for c in CASES}) == len(CASES)
    assert len(CASES) >= 60
    assert {c.path for c in CASES} == {I, T, C}


@pytest.fixture(scope="module")
def client(gateway) -> httpx.Client:
    with httpx.Client(base_url=gateway.base_url, timeout=20) as c:
        yield c


def _send_raw(base_url: str, case: Case) -> tuple[int, dict[str, str], bytes]:
    port = urlsplit(base_url).port
    assert port is not None
    if case.raw == "content-length":  # declare more than the cap, send a few bytes: refused before reading
        head = (
            f"POST {case.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\nConnection: close\r\n\r\n"
        ).encode()
        return raw_http(port, head, [b'{"image": "'])
    mib = b"x" * (1 << 20)  # chunked, no Content-Length: the cap is counted while streaming
    chunks = [b"%x\r\n%s\r\n" % (len(mib), mib)] * (MAX_BODY // len(mib) + 1) + [b"0\r\n\r\n"]
    head = (
        f"POST {case.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    return raw_http(port, head, chunks)


def _normal_request_works(client: httpx.Client) -> None:
    response = client.post(I, json={"image": image(GOOD_PNG)})
    assert response.status_code == 200, response.text
    assert len(response.json()["embeddings"]) == 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_gets_4xx_json(case: Case, client: httpx.Client, gateway) -> None:
    if case.raw:
        status, headers, body = _send_raw(gateway.base_url, case)
    else:
        headers = {"content-type": "application/json", **case.headers}
        response = client.post(case.path, content=case.content(), headers=headers)
        status, headers, body = response.status_code, dict(response.headers), response.content
    assert status == case.status, body[:500]
    assert 400 <= status < 500
    assert headers.get("content-type", "").startswith("application/json")
    payload = json.loads(body)
    assert isinstance(payload, dict) and ("message" in payload or "detail" in payload), payload
    if status == 422:
        assert isinstance(payload["detail"], list) and payload["detail"], payload
    if case.contains:
        assert case.contains in payload["message"], payload
    if case.contains == IMAGE_ERROR:
        assert payload["message"].startswith(IMAGE_ERROR)
    _normal_request_works(client)


def _embed(client: httpx.Client, data: bytes) -> np.ndarray:
    response = client.post(I, json={"image": image(data)})
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["embeddings"][0], dtype=np.float32)


def test_animated_gif_embeds_its_first_frame(client: httpx.Client) -> None:
    """Decided: like upstream's OpenCV imdecode, an animated GIF is its first frame (200, not 4xx)."""
    animated = _embed(client, animated_gif(((255, 0, 0), (0, 255, 0), (0, 0, 255))))
    first = _embed(client, still_gif((255, 0, 0)))
    second = _embed(client, still_gif((0, 255, 0)))
    np.testing.assert_allclose(animated, first, rtol=1e-5, atol=1e-5)
    assert not np.allclose(animated, second, rtol=1e-3, atol=1e-3)


def test_float_tiff_with_nan_samples_gives_finite_embedding(client: httpx.Client) -> None:
    embedding = _embed(client, float_tiff_with_nan())
    assert np.isfinite(embedding).all()


@pytest.mark.parametrize("size", [(2, 2), (40_000, 2), (2, 40_000)], ids=["2x2", "40000x2", "2x40000"])
def test_edge_sizes_within_limits_embed(client: httpx.Client, size: tuple[int, int]) -> None:
    assert np.isfinite(_embed(client, png_bytes(*size))).all()


def test_compare_results_are_finite_json(client: httpx.Client) -> None:
    """Uniform images and odd prompts never produce NaN (which is not valid JSON)."""
    black = image(png_bytes(8, 8, (0, 0, 0)))
    response = client.post(C, json={"subject": black, "prompt": ["", " ", "\u0000", "<start_of_text>"]})
    assert response.status_code == 200, response.text
    similarity = response.json()["similarity"]
    assert len(similarity) == 4 and all(np.isfinite(similarity))
