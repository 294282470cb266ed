"""Reference parity of the served model: the gateway + Triton against eager open_clip with the same weights.

(a) the gateway's uint8 tensor (with the Preprocess it reads from Triton's model config, which must equal
    `open_clip.get_model_preprocess_cfg(model)`) is IDENTICAL to open_clip's own eval transform (before
    Normalize, x255) on the same file after `ImageOps.exif_transpose`, for real photographs in JPEG/PNG,
    varied sizes and orientations, grayscale, and EXIF-rotated JPEGs (orientation 3, 6, 8);
(b) POST /clip/embed_image for that file matches `tiny_reference.encode_image(transform(img))`;
(c) token ids match `open_clip.get_tokenizer("ViT-B-32")` and POST /clip/embed_text matches
    `tiny_reference.encode_text(open_clip_tokenizer(texts))`, in every length bucket (16/32/77).

The worst cosine and max abs difference are printed in the terminal summary.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pybase64
import pytest
import torch
from skimage import data as skdata
from PIL import Image, ImageOps

from gateway.images.decode import Preprocess, image_to_tensor
from gateway.text.tokenize import ClipTokenizer
from gateway.version_info import versions_from_configs
from triton_clip.versions import model_names


MIN_COSINE = 0.99999
MAX_PIXELS = 40_000_000
ORIENTATION = 0x0112


def encode(img: Image.Image, fmt: str, exif_orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    kw: dict = {"quality": 90} if fmt == "JPEG" else {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = exif_orientation
        kw["exif"] = exif
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(name: str, size: tuple[int, int] | None = None, transpose: Image.Transpose | None = None) -> Image.Image:
    img = Image.fromarray(getattr(skdata, name)())
    if transpose is not None:
        img = img.transpose(transpose)
    return img.resize(size, Image.Resampling.LANCZOS) if size else img


# (id, image, format, EXIF orientation): landscape, portrait, square, panoramic, smaller than the model
# input (upscaled), large, odd sizes (banker's-rounded crop offsets), grayscale, EXIF-rotated.
CASES = [
    ("astronaut-512-jpeg", lambda: photo("astronaut"), "JPEG", None),
    ("astronaut-97x61-png", lambda: photo("astronaut", (97, 61)), "PNG", None),
    ("astronaut-1800x1201-png", lambda: photo("astronaut", (1800, 1201)), "PNG", None),
    ("chelsea-451x300-jpeg", lambda: photo("chelsea"), "JPEG", None),
    ("chelsea-300x451-portrait-png", lambda: photo("chelsea", transpose=Image.Transpose.ROTATE_90), "PNG", None),
    ("coffee-600x400-png", lambda: photo("coffee"), "PNG", None),
    ("coffee-1001x667-jpeg", lambda: photo("coffee", (1001, 667)), "JPEG", None),
    ("rocket-427x640-portrait-jpeg", lambda: photo("rocket"), "JPEG", None),
    ("rocket-65x97-png", lambda: photo("rocket", (65, 97)), "PNG", None),
    ("camera-gray-512-jpeg", lambda: photo("camera"), "JPEG", None),
    ("camera-gray-333x129-png", lambda: photo("camera", (333, 129)), "PNG", None),
    ("coins-gray-384x303-png", lambda: photo("coins"), "PNG", None),
    ("hubble-1000x872-jpeg", lambda: photo("hubble_deep_field"), "JPEG", None),
    ("immunohistochemistry-40x41-jpeg", lambda: photo("immunohistochemistry", (40, 41)), "JPEG", None),
    ("coffee-exif3-jpeg", lambda: photo("coffee"), "JPEG", 3),
    ("coffee-exif6-jpeg", lambda: photo("coffee"), "JPEG", 6),
    ("coffee-exif8-jpeg", lambda: photo("coffee"), "JPEG", 8),
    ("rocket-exif6-jpeg", lambda: photo("rocket", (211, 317)), "JPEG", 6),
    ("chelsea-exif8-jpeg", lambda: photo("chelsea", (300, 199)), "JPEG", 8),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {case_id: encode(make(), fmt, orient) for case_id, make, fmt, orient in CASES}


@pytest.fixture(scope="module")
def preprocess_cfg(open_clip_tiny, tiny_reference) -> dict:
    return open_clip_tiny.get_model_preprocess_cfg(tiny_reference)


@pytest.fixture(scope="module")
def served_preprocess(triton, preprocess_cfg) -> Preprocess:
    """The Preprocess the gateway builds from Triton's model configs, checked against the model's own cfg."""
    configs = [
        httpx.get(triton.url(f"/v2/models/{name}/config"), timeout=10).json() for name in model_names("clip-tiny")
    ]
    served = versions_from_configs(configs)["clip-tiny"].preprocess
    size = preprocess_cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    assert served == Preprocess(
        int(size),
        preprocess_cfg["resize_mode"],
        preprocess_cfg["interpolation"],
        int(preprocess_cfg.get("fill_color", 0)),
    )
    return served


@pytest.fixture(scope="module")
def transforms(open_clip_tiny, preprocess_cfg):
    """(full open_clip eval transform, the same without its final Normalize)."""
    from torchvision.transforms import Compose

    cfg = preprocess_cfg
    full = open_clip_tiny.image_transform(
        cfg["size"],
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        resize_mode=cfg["resize_mode"],
        interpolation=cfg["interpolation"],
        fill_color=cfg.get("fill_color", 0),
    )
    assert type(full.transforms[-1]).__name__ == "Normalize"
    return full, Compose(full.transforms[:-1])


@pytest.fixture(scope="module")
def client(gateway):
    with httpx.Client(base_url=gateway.base_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def report(request):
    """Collects (kind, id, cosine, max abs diff) and prints the worst of each kind at module end."""
    rows: list[tuple[str, str, float, float]] = []
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not rows:
        return
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line("")
        for kind in sorted({r[0] for r in rows}):
            mine = [r for r in rows if r[0] == kind]
            worst_cos = min(mine, key=lambda r: r[2])
            worst_diff = max(mine, key=lambda r: r[3])
            reporter.write_line(
                f"parity {kind}: {len(mine)} inputs, min cosine {worst_cos[2]:.9f} = 1 - {1 - worst_cos[2]:.1e} "
                f"({worst_cos[1]}), "
                f"max abs diff {worst_diff[3]:.3e} ({worst_diff[1]})"
            )


def reference_uint8(img: Image.Image, without_normalize) -> np.ndarray:
    scaled = without_normalize(img) * 255
    rounded = scaled.round()
    assert float((scaled - rounded).abs().max()) < 1e-3  # ToTensor's /255 round-trips exactly
    return rounded.to(torch.uint8).numpy()


def opened(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data)))


def compare_rows(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    cos = float(np.dot(got, want) / np.sqrt(np.vdot(got, got) * np.vdot(want, want)))
    return cos, float(np.abs(got - want).max())


# --- (a) tensors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_tensor_identical_to_open_clip_transform(case_id, files, served_preprocess, transforms):
    data = files[case_id]
    got = image_to_tensor(data, served_preprocess, max_pixels=MAX_PIXELS)
    want = reference_uint8(opened(data), transforms[1])
    assert got.dtype == np.uint8 and got.shape == want.shape == (3, served_preprocess.size, served_preprocess.size)
    diff = np.argwhere(got != want)
    assert diff.size == 0, f"{len(diff)} values differ, first at {diff[:5].tolist()}"


@pytest.mark.parametrize("case_id", [c for c in CASE_IDS if "exif" in c])
def test_exif_orientation_is_actually_applied(case_id, files, served_preprocess, transforms):
    """Sensitivity check: for rotated files the un-rotated reference must differ, or (a) proves nothing."""
    data = files[case_id]
    got = image_to_tensor(data, served_preprocess, max_pixels=MAX_PIXELS)
    raw = reference_uint8(Image.open(io.BytesIO(data)), transforms[1])  # EXIF ignored
    assert not np.array_equal(got, raw)


def test_served_version_uses_the_models_preprocessing(client, served_preprocess):
    info = {v["clip_version_id"]: v for v in client.get("/info").json()["versions"]}["clip-tiny"]
    assert info["image_size"] == served_preprocess.size


# --- (b) image embeddings --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eager_image_embeddings(files, transforms, tiny_reference) -> dict[str, np.ndarray]:
    full = transforms[0]
    batch = torch.stack([full(opened(files[case_id])) for case_id in CASE_IDS])
    with torch.inference_mode():
        out = tiny_reference.encode_image(batch).float().numpy()
    return dict(zip(CASE_IDS, out, strict=True))


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_served_image_embedding_matches_eager_open_clip(case_id, files, eager_image_embeddings, client, report):
    payload = {"image": {"type": "base64", "value": pybase64.b64encode(files[case_id]).decode()}}
    r = client.post("/clip/embed_image", json=payload)
    assert r.status_code == 200, r.text
    rows = r.json()["embeddings"]
    assert len(rows) == 1 and len(rows[0]) == 32
    cos, diff = compare_rows(rows[0], eager_image_embeddings[case_id])
    report.append(("image", case_id, cos, diff))
    assert cos >= MIN_COSINE, f"cosine {cos:.9f}, max abs diff {diff:.3e}"


def test_served_image_list_matches_eager_in_order(files, eager_image_embeddings, client, report):
    ids = CASE_IDS[:8]
    payload = {"image": [{"type": "base64", "value": pybase64.b64encode(files[i]).decode()} for i in ids]}
    r = client.post("/clip/embed_image", json=payload)
    assert r.status_code == 200, r.text
    rows = r.json()["embeddings"]
    assert len(rows) == len(ids)
    for case_id, row in zip(ids, rows, strict=True):
        cos, diff = compare_rows(row, eager_image_embeddings[case_id])
        report.append(("image-list", case_id, cos, diff))
        assert cos >= MIN_COSINE, (case_id, cos, diff)


# --- (c) text --------------------------------------------------------------------------------------


def _words(n: int) -> str:
    return " ".join(["a"] * n)  # "a" is one BPE token: n words = n + 2 tokens with sot/eot


# Mostly distinct from other test modules' texts, so the gateway's text cache does not answer them.
TEXTS = [
    "",  # empty: [sot, eot]
    "   ",
    "\t\n\r\u00a0\u2003 ",  # whitespace only, unicode spaces included
    "a photo of a parity test dog",
    "Ünïcödé façade — naïve café, Œuvre, straße, İstanbul",
    "日本語のテキストと中文文本，한국어 텍스트",
    "emoji 🐶🐱 👩‍🚀 🇫🇷 ❤️ 🏳️‍🌈 in a sentence",
    "HTML &amp; entities &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;x&#39; &amp;amp;lt;",
    "mojibake: Ã©tÃ© cafÃ©",
    "odd\u200bzero\u200dwidth and\u00adsoft hyphen",
    "UPPER lower MiXeD   spacing\n\nnew lines\ttabs",
    "it's they're we've I'm you'll he'd",
    "<start_of_text> literal special tokens <end_of_text>",
    "numbers 1234567890 and 3.14159 and -42",
    "!!! ??? ... --- ###",
    _words(14),  # 16 tokens: bucket 16 exactly
    _words(15),  # 17 tokens: bucket 32
    _words(30),  # 32 tokens: bucket 32 exactly
    _words(31),  # 33 tokens: bucket 77
    _words(74),  # 76 tokens
    _words(75),  # 77 tokens: the context exactly
    "an " * 40 + "end",
]
OVER = [_words(76), "tokens " * 120]  # 78 tokens and far more: served only with "truncate": true


def token_length(ids: np.ndarray, eot_id: int) -> int:
    return int(np.argmax(ids == eot_id)) + 1


@pytest.fixture(scope="module")
def oc_tokenizer(open_clip_tiny):
    return open_clip_tiny.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return ClipTokenizer()


def test_length_fixtures_cover_every_bucket(oc_tokenizer, tok):
    lengths = [token_length(row, tok.eot_id) for row in oc_tokenizer(TEXTS).numpy()]
    assert {14 + 2, 15 + 2, 30 + 2, 31 + 2, 76, 77} <= set(lengths)
    assert {tok.batch([t]).shape[1] for t in TEXTS} == {16, 32, 77}
    assert [len(tok.tokenize(t, truncate=True)) for t in OVER] == [77, 77]
    assert len(tok.encode(OVER[0])) + 2 == 78


def test_token_ids_identical_to_open_clip(oc_tokenizer, tok):
    want = oc_tokenizer(TEXTS + OVER).numpy()  # open_clip truncates silently
    got = np.stack([tok.batch([t], truncate=True, buckets=(77,))[0] for t in TEXTS + OVER])
    mismatched = [t for t, g, w in zip(TEXTS + OVER, got, want, strict=True) if not np.array_equal(g, w)]
    assert not mismatched
    bucketed = tok.batch(TEXTS)  # one request's tensor: first L columns of open_clip's, rest zero there
    assert bucketed.shape == (len(TEXTS), 77)
    assert np.array_equal(bucketed, oc_tokenizer(TEXTS).numpy())
    short = [t for t in TEXTS if tok.batch([t]).shape[1] == 16]
    assert np.array_equal(tok.batch(short), oc_tokenizer(short).numpy()[:, :16])
    assert not oc_tokenizer(short).numpy()[:, 16:].any()


@pytest.fixture(scope="module")
def eager_text_embeddings(oc_tokenizer, tiny_reference) -> dict[str, np.ndarray]:
    texts = TEXTS + OVER
    with torch.inference_mode():
        out = tiny_reference.encode_text(oc_tokenizer(texts)).float().numpy()
    return dict(zip(texts, out, strict=True))


@pytest.mark.parametrize("index", range(len(TEXTS)))
def test_served_text_embedding_matches_eager_open_clip(index, eager_text_embeddings, client, report, tok):
    text = TEXTS[index]
    r = client.post("/clip/embed_text", json={"text": text})
    assert r.status_code == 200, r.text
    rows = r.json()["embeddings"]
    assert len(rows) == 1
    cos, diff = compare_rows(rows[0], eager_text_embeddings[text])
    report.append((f"text-bucket{tok.batch([text]).shape[1]}", repr(text[:24]), cos, diff))
    assert cos >= MIN_COSINE, f"{text!r}: cosine {cos:.9f}, max abs diff {diff:.3e}"


def test_served_text_batch_matches_eager_open_clip(eager_text_embeddings, client, report):
    """All texts in one request (one tensor at bucket 77, truncation on): row i is text i."""
    texts = TEXTS + OVER
    r = client.post("/clip/embed_text", json={"text": texts, "truncate": True})
    assert r.status_code == 200, r.text
    rows = r.json()["embeddings"]
    assert len(rows) == len(texts)
    for text, row in zip(texts, rows, strict=True):
        cos, diff = compare_rows(row, eager_text_embeddings[text])
        report.append(("text-batch", repr(text[:24]), cos, diff))
        assert cos >= MIN_COSINE, f"{text!r}: cosine {cos:.9f}, max abs diff {diff:.3e}"


@pytest.mark.parametrize("text", OVER, ids=["78-tokens", "240-tokens"])
def test_over_context_refused_unless_truncate(text, eager_text_embeddings, client, report):
    r = client.post("/clip/embed_text", json={"text": text})
    assert r.status_code == 400, r.text
    r = client.post("/clip/embed_text", json={"text": text, "truncate": True})
    assert r.status_code == 200, r.text
    cos, diff = compare_rows(r.json()["embeddings"][0], eager_text_embeddings[text])  # open_clip truncates
    report.append(("text-truncated", repr(text[:24]), cos, diff))
    assert cos >= MIN_COSINE, f"cosine {cos:.9f}, max abs diff {diff:.3e}"
