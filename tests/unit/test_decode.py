"""gateway.images.decode against open_clip 3.3.0's eval transform (the reference; torch allowed here).

A tensor that differs from open_clip's by one level is a different embedding in production, so parity
is `np.array_equal`, never a tolerance. The reference is `open_clip.image_transform(...)` without its
final Normalize, x255, on the same file opened with PIL + `ImageOps.exif_transpose`.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pybase64
import pytest
import open_clip
import torch
from skimage import data as skdata
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from gateway.errors import ImageLoadError
from gateway.images import decode
from gateway.images.decode import Preprocess, decode_base64, image_to_tensor, load_image, preprocess


MAX_PIXELS = 40_000_000
CONFIGS = [
    Preprocess(size, mode, interp)
    for size in (224, 64, 336)
    for mode in ("shortest", "squash", "longest")
    for interp in ("bicubic", "bilinear")
]


def cfg_id(cfg: Preprocess) -> str:
    return f"{cfg.size}-{cfg.resize_mode}-{cfg.interpolation}"


_TRANSFORMS: dict[Preprocess, object] = {}


def reference(img: Image.Image, cfg: Preprocess) -> np.ndarray:
    """open_clip's eval transform minus Normalize, as uint8 [3, S, S]."""
    if cfg not in _TRANSFORMS:
        from torchvision.transforms import Compose

        full = open_clip.image_transform(
            cfg.size,
            is_train=False,
            resize_mode=cfg.resize_mode,
            interpolation=cfg.interpolation,
            fill_color=cfg.fill_color,
        )
        assert type(full.transforms[-1]).__name__ == "Normalize"
        _TRANSFORMS[cfg] = Compose(full.transforms[:-1])
    scaled = _TRANSFORMS[cfg](img) * 255
    rounded = scaled.round()
    assert float((scaled - rounded).abs().max()) < 1e-3  # ToTensor's /255 round-trips exactly
    return rounded.to(torch.uint8).numpy()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def reference_from_bytes(data: bytes, cfg: Preprocess) -> np.ndarray:
    return reference(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), cfg)


def photo(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    img = Image.fromarray(getattr(skdata, name)())
    return img.resize(size, Image.Resampling.LANCZOS) if size else img


# (sample, size as (w, h) or None for native, format): real photographs at odd, square, landscape,
# portrait, panoramic and large sizes; odd sizes hit torchvision's banker's-rounded crop offsets.
SOURCES = [
    ("astronaut", (97, 61), "JPEG"),
    ("astronaut", (224, 224), "PNG"),
    ("astronaut", (640, 480), "JPEG"),
    ("astronaut", (480, 640), "PNG"),
    ("chelsea", None, "JPEG"),  # 451 x 300
    ("coffee", (1000, 300), "JPEG"),
    ("coffee", (300, 1000), "PNG"),
    ("rocket", None, "PNG"),  # 640 x 427
    ("rocket", (3000, 2000), "JPEG"),
    ("camera", (333, 517), "JPEG"),  # grayscale: open_clip resizes the L image
    ("hubble_deep_field", (63, 64), "PNG"),
    ("retina", (225, 223), "JPEG"),
]


@pytest.fixture(scope="module", params=SOURCES, ids=lambda s: f"{s[0]}-{s[1]}-{s[2]}")
def source_bytes(request) -> bytes:
    name, size, fmt = request.param
    return encode(photo(name, size), fmt, **({"quality": 90} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_parity_with_open_clip(source_bytes: bytes, cfg: Preprocess) -> None:
    got = image_to_tensor(source_bytes, cfg, max_pixels=MAX_PIXELS)
    assert got.dtype == np.uint8 and got.shape == (3, cfg.size, cfg.size) and got.flags.c_contiguous
    assert np.array_equal(got, reference_from_bytes(source_bytes, cfg))


@pytest.mark.parametrize("orientation", [3, 6, 8, 2, 5])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_parity(orientation: int, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(photo("coffee", (300, 200)), fmt, exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == orientation
    loaded = load_image(data, max_pixels=MAX_PIXELS)
    assert loaded.size == ((200, 300) if orientation in (5, 6, 7, 8) else (300, 200))
    for cfg in (Preprocess(224), Preprocess(64, "longest", "bilinear"), Preprocess(336, "squash")):
        assert np.array_equal(image_to_tensor(data, cfg, max_pixels=MAX_PIXELS), reference_from_bytes(data, cfg))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 700),
    height=st.integers(1, 700),
    size=st.sampled_from([64, 224, 336, 37]),
    mode=st.sampled_from(["shortest", "squash", "longest"]),
    interp=st.sampled_from(["bicubic", "bilinear"]),
    fill=st.sampled_from([0, 128, 255]),
    seed=st.integers(0, 2**32 - 1),
)
def test_parity_random_geometry(width, height, size, mode, interp, fill, seed) -> None:
    """Any size/aspect: resize sizes, crop offsets and padding match torchvision/open_clip exactly."""
    assume(not (mode == "longest" and max(width, height) >= 2 * size * min(width, height)))  # open_clip crashes
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    cfg = Preprocess(size, mode, interp, fill)
    assert np.array_equal(preprocess(img, cfg), reference(img, cfg))


def test_longest_pads_with_fill_color() -> None:
    img = photo("coffee", (400, 100))
    for fill in (0, 77, 255):
        cfg = Preprocess(64, "longest", fill_color=fill)
        got = preprocess(img, cfg)
        assert np.array_equal(got, reference(img, cfg))
        assert (got[:, 0, :] == fill).all()


def test_longest_extreme_aspect_keeps_one_row() -> None:
    """open_clip raises (a side rounds to 0 px); we keep one row and pad."""
    img = Image.new("RGB", (1000, 3), (200, 10, 10))
    cfg = Preprocess(64, "longest")
    with pytest.raises(ValueError):
        reference(img, cfg)
    got = preprocess(img, cfg)
    assert got.shape == (3, 64, 64) and (got[:, 0] == 0).all() and (got[0, (64 - 1) // 2] == 200).all()


@pytest.mark.parametrize("size", [(2, 2_000_000), (2_000_000, 3), (40, 150_000)])
def test_extreme_aspect_never_materialises_the_resize(size, monkeypatch) -> None:
    """'shortest' of a 2 x 2M image would be 224 x 224M before the crop: resampled as a window instead."""
    img = Image.new("RGB", size, (10, 200, 30))
    areas: list[int] = []
    resize = Image.Image.resize

    def recording_resize(self, new_size, *args, **kwargs):
        areas.append(new_size[0] * new_size[1])
        return resize(self, new_size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    got = preprocess(img, Preprocess(224))
    assert areas and max(areas) <= 224 * 224 * 2
    assert (got == np.array([10, 200, 30], np.uint8)[:, None, None]).all()


def test_windowed_resize_is_within_two_levels_of_the_full_one(monkeypatch) -> None:
    """Pillow takes the window as a float32 box, so a coefficient may differ in its last bits."""
    rng = np.random.default_rng(1)
    for (height, width), interp in [((2400, 9), "bicubic"), ((2400, 9), "bilinear"), ((12000, 100), "bicubic")]:
        img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))  # the last: vertical first
        cfg = Preprocess(64, "shortest", interp)
        exact = reference(img, cfg)  # intermediates under the budget: the exact path
        assert np.array_equal(preprocess(img, cfg), exact)
        with monkeypatch.context() as patch:
            patch.setattr(decode, "_MAX_INTERMEDIATE_PIXELS", 0)
            windowed = preprocess(img, cfg)
        diff = np.abs(windowed.astype(int) - exact)
        assert diff.max() <= 2 and (diff > 0).mean() < 0.01


# --- modes -------------------------------------------------------------------------------------


def rgb_reference(img: Image.Image, cfg: Preprocess) -> np.ndarray:
    """What upstream feeds open_clip: the image already RGB (OpenCV IMREAD_COLOR -> RGB -> PIL)."""
    return reference(img.convert("RGB"), cfg)


CFG = Preprocess(224)


def test_gray_matches_open_clip_on_the_l_image() -> None:
    img = photo("camera", (300, 200))
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "L"
    assert np.array_equal(image_to_tensor(data, CFG, max_pixels=MAX_PIXELS), reference(img, CFG))


@pytest.mark.parametrize("kind", ["LA", "RGBA", "P", "P-transparency", "GIF-transparency", "1", "CMYK"])
def test_modes_decode_to_rgb_before_resizing(kind: str) -> None:
    """Alpha dropped (not composited), palettes expanded, CMYK converted, then the RGB transform.

    open_clip on the raw PIL image would resize first: NEAREST for P and 1 (Pillow forces it), a
    premultiplied resize for LA/RGBA. Upstream gives open_clip an RGB image, so we match that.
    """
    base = photo("chelsea", (257, 171))
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 257).astype(np.uint8), (171, 1)))
    if kind == "LA":
        img, fmt = Image.merge("LA", (base.convert("L"), alpha)), "PNG"
    elif kind == "RGBA":
        img, fmt = Image.merge("RGBA", (*base.split(), alpha)), "PNG"
    elif kind == "P":
        img, fmt = base.quantize(64), "PNG"
    elif kind == "P-transparency":
        img, fmt = base.quantize(64), "PNG"
        img.info["transparency"] = 3
    elif kind == "GIF-transparency":
        img, fmt = base.quantize(64), "GIF"  # GIF: P frames, transparency index
        img.info["transparency"] = 5
    elif kind == "1":
        img, fmt = base.convert("1"), "PNG"
    else:
        img, fmt = base.convert("CMYK"), "JPEG"
    data = encode(img, fmt)
    opened = Image.open(io.BytesIO(data))
    loaded = load_image(data, max_pixels=MAX_PIXELS)
    assert loaded.mode == "RGB" and loaded.size == (257, 171)
    assert np.array_equal(np.asarray(loaded), np.asarray(opened.convert("RGB")))  # alpha ignored
    got = image_to_tensor(data, CFG, max_pixels=MAX_PIXELS)
    assert np.array_equal(got, rgb_reference(Image.open(io.BytesIO(data)), CFG))
    if kind in ("P", "1", "RGBA"):  # document the divergence from open_clip on the raw PIL image
        assert not np.array_equal(got, reference(Image.open(io.BytesIO(data)), CFG))


def test_sixteen_bit_gray_keeps_the_high_byte() -> None:
    """I;16 PNG: OpenCV IMREAD_COLOR (libpng strip_16) keeps value >> 8; open_clip would saturate at 255."""
    values = (np.asarray(photo("camera", (200, 150))).astype(np.uint16) * 257) + 3
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    loaded = np.asarray(load_image(data, max_pixels=MAX_PIXELS))
    assert np.array_equal(loaded[..., 1], (values >> 8).astype(np.uint8))
    expected = reference(Image.fromarray((values >> 8).astype(np.uint8)), CFG)
    assert np.array_equal(image_to_tensor(data, CFG, max_pixels=MAX_PIXELS), expected)


def test_sixteen_bit_rgb_keeps_the_high_byte() -> None:
    values = np.asarray(photo("astronaut", (120, 90))).astype(np.uint16) * 257 + 200
    raw = png_chunks(120, 90, bit_depth=16, color_type=2, rows=values.astype(">u2").tobytes(), width_bytes=120 * 6)
    loaded = np.asarray(load_image(raw, max_pixels=MAX_PIXELS))
    assert np.array_equal(loaded, (values >> 8).astype(np.uint8))


def test_float_and_int32_modes() -> None:
    floats = Image.fromarray(np.array([[-3.0, 0.4, 0.6, 254.5, 300.0, np.nan]] * 3, dtype=np.float32))
    assert np.asarray(decode._to_rgb(floats))[0, :, 0].tolist() == [0, 0, 1, 254, 255, 0]
    ints = Image.fromarray(np.array([[-1, 255, 256, 65535, 70000]] * 2, dtype=np.int32))
    assert np.asarray(decode._to_rgb(ints))[0, :, 0].tolist() == [0, 0, 1, 255, 255]


# --- errors ------------------------------------------------------------------------------------


def png_chunks(
    width: int, height: int, *, bit_depth: int = 8, color_type: int = 2, rows: bytes | None = None, width_bytes: int = 0
) -> bytes:
    """A PNG with valid CRCs; without `rows` it has no pixel data at all (a header-only claim)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if rows is not None:
        lines = b"".join(b"\x00" + rows[i * width_bytes : (i + 1) * width_bytes] for i in range(height))
        out += chunk(b"IDAT", zlib.compress(lines))
    return out + chunk(b"IEND", b"")


def reason_of(data: bytes, **kw) -> str:
    with pytest.raises(ImageLoadError) as info:
        image_to_tensor(data, CFG, max_pixels=kw.pop("max_pixels", MAX_PIXELS), **kw)
    return info.value.reason


def test_decode_base64() -> None:
    data = encode(photo("astronaut", (32, 32)), "PNG")
    b64 = pybase64.b64encode(data).decode()
    assert decode_base64(b64) == data
    assert decode_base64("data:image/png;base64," + b64) == data
    assert decode_base64("data:image/jpeg;base64," + b64) == data
    for bad in ("abc", "not base64 at all!", "é" * 8, "data:image/png;base64,abcde"):
        with pytest.raises(ImageLoadError) as info:
            decode_base64(bad)
        assert info.value.reason == "base64" and "Malformed base64 input image." in info.value.message
    for empty in ("", "data:image/png;base64,", "===="):
        with pytest.raises(ImageLoadError) as info:
            decode_base64(empty)
        assert info.value.reason == "empty" and "Empty image payload." in info.value.message
    # A data URI of another type is not stripped, as upstream: it fails as base64 or as an image.
    with pytest.raises(ImageLoadError):
        image_to_tensor(decode_base64("data:text/plain;base64," + b64), CFG, max_pixels=MAX_PIXELS)


def test_error_reasons() -> None:
    jpeg = encode(photo("astronaut", (300, 200)), "JPEG")
    png = encode(photo("astronaut", (300, 200)), "PNG")
    assert reason_of(b"") == "empty"
    assert reason_of(b"hello, this is not an image at all") == "not_image"
    assert reason_of(jpeg[: len(jpeg) // 2]) == "not_image"
    assert reason_of(png[: len(png) // 2]) == "not_image"
    assert reason_of(jpeg[:20]) == "not_image"
    assert reason_of(encode(Image.new("RGB", (1, 1)), "PNG")) == "too_small"
    assert reason_of(encode(Image.new("RGB", (500, 1)), "JPEG")) == "too_small"
    assert reason_of(encode(Image.new("RGB", (9, 9)), "PNG"), min_side=10) == "too_small"
    assert reason_of(png, max_pixels=300 * 200 - 1) == "too_many_pixels"
    assert image_to_tensor(png, CFG, max_pixels=300 * 200).shape == (3, 224, 224)
    message = ImageLoadError("Data is not image.").message
    assert message == "Could not load input image. Cause: Data is not image."


def test_formats_outside_the_allowlist_are_not_images() -> None:
    """EPS (Ghostscript), ICO, TGA... are not opened, even though Pillow could."""
    img = photo("astronaut", (64, 64))
    for fmt in ("ICO", "TGA", "PCX"):
        assert reason_of(encode(img, fmt)) == "not_image"
    for fmt in ("BMP", "TIFF", "WEBP", "GIF", "PPM"):
        assert image_to_tensor(encode(img, fmt), CFG, max_pixels=MAX_PIXELS).shape == (3, 224, 224)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("width,height", [(100_000, 100_000), (10_000, 10_000), (7_000, 7_000), (65_535, 65_535)])
def test_huge_declared_dimensions_refused_from_the_header(width: int, height: int) -> None:
    """No IDAT at all: reaching `too_many_pixels` (not `not_image`) proves nothing was decoded."""
    assert reason_of(png_chunks(width, height)) == "too_many_pixels"


def test_huge_jpeg_header_refused() -> None:
    for height, width in [(5_000, 9_000), (60_000, 60_000)]:  # under and over Pillow's own bomb limit
        data = bytearray(encode(photo("astronaut", (64, 48)), "JPEG"))
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)  # SOF0: length(2) precision(1) height width
        if width == 9_000:
            assert Image.open(io.BytesIO(bytes(data))).size == (width, height)
        assert reason_of(bytes(data)) == "too_many_pixels"


def test_animated_gif_uses_the_first_frame() -> None:
    """Like OpenCV's imdecode: the first frame, not an error (documented in docs/decode-draft.md)."""
    frames = [photo("astronaut", (120, 80)), photo("coffee", (120, 80)), photo("rocket", (120, 80))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    first = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(image_to_tensor(data, CFG, max_pixels=MAX_PIXELS), reference(first, CFG))
    apng = encode(frames[1], "PNG", save_all=True, append_images=[frames[2]])
    assert np.array_equal(image_to_tensor(apng, CFG, max_pixels=MAX_PIXELS), reference(frames[1], CFG))


def test_preprocess_validation() -> None:
    for bad in (
        dict(size=0),
        dict(size=224, resize_mode="crop"),
        dict(size=224, interpolation="nearest"),
        dict(size=224, fill_color=256),
    ):
        with pytest.raises(ValueError):
            Preprocess(**bad)


# --- draft -------------------------------------------------------------------------------------


def test_draft_never_decodes_below_the_size() -> None:
    data = encode(photo("rocket", (3000, 2000)), "JPEG", quality=90)
    for size in (224, 336, 64):
        img = load_image(data, max_pixels=MAX_PIXELS, draft_size=size)
        assert min(img.size) >= size and img.size[0] < 3000 and img.mode == "RGB"
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(photo("rocket", (3000, 2000)), "JPEG", exif=exif)
    assert load_image(rotated, max_pixels=MAX_PIXELS, draft_size=224).size == (250, 375)
    small = encode(photo("rocket", (400, 300)), "JPEG")  # under 2x the size: no DCT scaling, exact
    assert np.array_equal(
        image_to_tensor(small, CFG, max_pixels=MAX_PIXELS, draft=True),
        image_to_tensor(small, CFG, max_pixels=MAX_PIXELS),
    )
    png = encode(photo("rocket", (1000, 700)), "PNG")  # draft is JPEG-only
    assert load_image(png, max_pixels=MAX_PIXELS, draft_size=224).size == (1000, 700)


# --- fuzz --------------------------------------------------------------------------------------

SEEDS = [
    encode(photo("astronaut", (40, 30)), "JPEG", quality=80),
    encode(photo("astronaut", (40, 30)), "PNG"),
    encode(photo("chelsea", (30, 40)).quantize(16), "GIF"),
    encode(photo("coffee", (24, 24)), "WEBP"),
    encode(photo("rocket", (24, 20)), "TIFF"),
]
FUZZ_CFG = Preprocess(32)


def must_be_clean(data: bytes, draft: bool) -> None:
    try:
        out = image_to_tensor(data, FUZZ_CFG, max_pixels=4_000_000, draft=draft)
    except ImageLoadError:
        return
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Truncated File Read", "Corrupt EXIF data"...
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), draft=st.booleans())
def test_fuzz_random_bytes(data: bytes, draft: bool) -> None:
    must_be_clean(data, draft)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from("sit")),
        min_size=1,
        max_size=8,
    ),
    draft=st.booleans(),
)
def test_fuzz_mutated_images(seed: int, edits, draft: bool) -> None:
    data = bytearray(SEEDS[seed])
    for where, byte, op in edits:
        i = int(where * len(data))
        if op == "s":
            data[i] = byte  # substitute
        elif op == "i":
            data.insert(i, byte)  # insert
        else:
            del data[i:]  # truncate
        if not data:
            break
    must_be_clean(bytes(data), draft)
