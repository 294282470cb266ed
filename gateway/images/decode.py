"""Image bytes -> the uint8 [3, S, S] tensor open_clip 3.3.0's eval transform would produce, without torch.

The Triton image tower takes uint8 RGB already resized and centre-cropped (scale and mean/std are
inside the model), so this module replays `open_clip.image_transform(size, is_train=False, ...)`
step by step on Pillow: torchvision's `Resize` on a PIL image is `img.resize(..., BICUBIC|BILINEAR)`,
so using the same Pillow call with the same integer sizes and crop offsets is bit-exact.
The size/offset arithmetic below copies torchvision's `_compute_resized_output_size`,
`center_crop` and open_clip's `ResizeKeepRatio`/`center_crop_or_pad`, Python `round` included.

Decoding follows upstream (OpenCV `IMREAD_COLOR`): EXIF orientation applied, alpha dropped (not
composited), 16-bit reduced by `>> 8`, first frame of animated/multi-page files. Unlike open_clip on a
raw PIL image, conversion to RGB happens *before* the resize (open_clip resizes P images with NEAREST
and RGBA premultiplied; upstream hands open_clip an RGB image, and so do we). Two deliberate departures,
both where open_clip fails: 'longest' keeps a 1 px side instead of crashing on 0, and aspect ratios whose
pre-crop resize would exceed `_MAX_INTERMEDIATE_PIXELS` are resampled as a window (not bit-exact).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
import pybase64
from PIL import Image, ImageOps

from gateway.errors import ImageLoadError

__all__ = ["Preprocess", "check_header", "decode_base64", "load_image", "preprocess", "image_to_tensor"]

_DATA_URI = re.compile(r"^data:image\/[a-z]+;base64,")  # upstream's BASE64_DATA_TYPE_PATTERN
# What upstream's OpenCV reads and Pillow can too. Never EPS (Ghostscript), PSD, WMF...: less attack surface.
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "PPM", "SUN", "JPEG2000")
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
_RESIZE_MODES = ("shortest", "squash", "longest")
# Past this many pixels the resized-before-crop image (extreme aspect ratios in 'shortest') is not
# materialised: a 2 x 20M image would need a 224 x 2.2G intermediate. See `_resize_crop`.
_MAX_INTERMEDIATE_PIXELS = 16_000_000


@dataclass(frozen=True)
class Preprocess:
    """The preprocessing the exported model records (open_clip's `PreprocessCfg`, square sizes only)."""

    size: int
    resize_mode: str = "shortest"  # shortest | squash | longest
    interpolation: str = "bicubic"  # bicubic | bilinear
    fill_color: int = 0  # padding value of 'longest'

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if self.resize_mode not in _RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {_RESIZE_MODES}, got {self.resize_mode!r}")
        if self.interpolation not in _FILTERS:
            raise ValueError(f"interpolation must be one of {tuple(_FILTERS)}, got {self.interpolation!r}")
        if not 0 <= self.fill_color <= 255:
            raise ValueError(f"fill_color must be in 0..255, got {self.fill_color}")


def decode_base64(value: str) -> bytes:
    """Upstream's `load_image_base64` front half: optional data-URI prefix, lenient base64."""
    try:
        data = pybase64.b64decode(_DATA_URI.sub("", value))
    except (ValueError, TypeError):  # binascii.Error is a ValueError; so is non-ASCII text
        raise ImageLoadError("Malformed base64 input image.", reason="base64") from None
    if not data:
        raise ImageLoadError("Empty image payload.", reason="empty")
    return data


def _open_checked(data: bytes, max_pixels: int, min_side: int) -> Image.Image:
    """Open from the header only and refuse bombs and tiny images before any pixel is decoded."""
    if not data:
        raise ImageLoadError("Empty image payload.", reason="empty")
    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # > Pillow's own limit
        raise ImageLoadError("Image has too many pixels.", reason="too_many_pixels") from None
    except Exception:
        raise ImageLoadError("Data is not image.", reason="not_image") from None
    try:
        width, height = img.size
    except Exception:
        raise ImageLoadError("Data is not image.", reason="not_image") from None
    if width * height > max_pixels:
        raise ImageLoadError(
            f"Image has too many pixels ({width}x{height}, limit {max_pixels}).", reason="too_many_pixels"
        )
    if min(width, height) < min_side:
        raise ImageLoadError(f"Image is too small ({width}x{height}, minimum side {min_side} px).", reason="too_small")
    return img


def check_header(data: bytes, *, max_pixels: int, min_side: int = 2) -> str:
    """The checks `load_image` makes before decoding (format, pixel count, bombs); returns the format.

    What the gateway runs per image when Triton decodes (GATEWAY_IMAGE_TRANSPORT=encoded): the same
    header errors, the same 400s, without decoding a pixel.
    """
    return str(_open_checked(data, max_pixels, min_side).format)


def load_image(data: bytes, *, max_pixels: int, min_side: int = 2, draft_size: int | None = None) -> Image.Image:
    """Decode to an RGB image, refusing bombs and tiny images from the header, before any pixel is decoded.

    Any failure, whatever Pillow raises, becomes an `ImageLoadError`: no byte string can cause a 500.
    `draft_size` lets libjpeg decode JPEGs at 1/2, 1/4 or 1/8 scale, never below draft_size on either
    side (faster, not bit-exact: see docs/decode-draft.md).
    """
    img = _open_checked(data, max_pixels, min_side)
    try:
        # Animated GIF/WebP/APNG, MPO, multi-page TIFF: Pillow opens on frame 0, as OpenCV's imdecode does.
        if draft_size is not None and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (draft_size, draft_size))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        return _to_rgb(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError("Image has too many pixels.", reason="too_many_pixels") from None
    except Exception:  # truncated data, corrupt chunks, odd modes, MemoryError...
        raise ImageLoadError("Data is not image.", reason="not_image") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Every Pillow mode to 8-bit RGB the way OpenCV's IMREAD_COLOR reads the file."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        values = np.asarray(img)
        if img.mode == "F":  # OpenCV convertTo(CV_8U): round and saturate
            gray = np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
        else:  # 16-bit samples: keep the high byte, like libpng's strip_16 / Pillow's RGB;16B
            gray = (np.clip(values, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    # L, LA, P (transparency ignored), PA, RGBA (alpha dropped), CMYK, YCbCr, LAB, HSV, 1 (0/255).
    return img.convert("RGB")


def _resized_size(width: int, height: int, cfg: Preprocess) -> tuple[int, int]:
    """(w, h) after open_clip's resize step, with torchvision's and timm's exact float/int rounding."""
    size = cfg.size
    if cfg.resize_mode == "squash":
        return size, size
    if cfg.resize_mode == "shortest":  # torchvision _compute_resized_output_size, size=[S]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)
    # longest: ResizeKeepRatio(longest=1).get_params, ratio_factor 1.0
    ratio_h, ratio_w = height / size, width / size
    ratio = max(ratio_h, ratio_w) * 1.0 + min(ratio_h, ratio_w) * (1.0 - 1.0)
    new_h, new_w = round(height * 1.0 / ratio), round(width * 1.0 / ratio)
    # open_clip crashes (Pillow: "height and width must be > 0") when a side rounds to 0 (aspect > 2S):
    # we keep one pixel row/column instead, then pad like everything else.
    return max(new_w, 1), max(new_h, 1)


def _resize_crop(img: Image.Image, cfg: Preprocess) -> Image.Image:
    """Resize then centre-crop (torchvision `center_crop` offsets: int(round(d / 2.0)), banker's rounding)."""
    size, resample = cfg.size, _FILTERS[cfg.interpolation]
    new_w, new_h = _resized_size(img.width, img.height, cfg)
    crop_w, crop_h = min(size, new_w), min(size, new_h)  # 'longest' may be smaller: padded afterwards
    left, top = int(round((new_w - crop_w) / 2.0)), int(round((new_h - crop_h) / 2.0))
    if new_w * new_h > _MAX_INTERMEDIATE_PIXELS:
        return _resize_window(img, (new_w, new_h), (left, top, left + crop_w, top + crop_h), resample)
    if (new_w, new_h) != img.size:  # torchvision skips the resize when the size already matches
        img = img.resize((new_w, new_h), resample)
    if (crop_w, crop_h) != img.size:
        img = img.crop((left, top, left + crop_w, top + crop_h))
    return img


def _resize_window(
    img: Image.Image, new_size: tuple[int, int], box: tuple[int, int, int, int], resample: Image.Resampling
) -> Image.Image:
    """`img.resize(new_size).crop(box)` without the huge intermediate of extreme aspect ratios.

    Only reached past `_MAX_INTERMEDIATE_PIXELS` (aspect > ~320:1 at S=224), where open_clip itself
    would allocate gigabytes. Same filter and scale over a source slice holding the filter's support,
    one axis at a time in the order Pillow 12's `resize` picks for the full image (very tall images go
    vertically first). Not bit-exact: Pillow takes the window as a float32 box, which moves each output
    pixel's centre by ~1e-6 px and its 22-bit fixed-point weights by a few units; measured <= 2 levels
    on < 1% of pixels (tests/unit/test_decode.py).
    """
    support = 2.0 if resample == Image.Resampling.BICUBIC else 1.0
    vertical_first = img.height > img.width * 100 and new_size[1] < img.height
    crop = [0, 0, img.width, img.height]
    src_box = [0.0, 0.0, float(img.width), float(img.height)]
    for axis in (0, 1):  # slice the source to the window's support on each cropped axis
        src, full, out0, out1 = img.size[axis], new_size[axis], box[axis], box[axis + 2]
        if (out0, out1) != (0, full):
            scale = src / full
            reach = support * max(scale, 1.0)
            lo = max(0, math.floor(out0 * scale - reach) - 1)
            hi = min(src, math.ceil(out1 * scale + reach) + 1)
            crop[axis], crop[axis + 2] = lo, hi
            src_box[axis], src_box[axis + 2] = out0 * scale - lo, out1 * scale - lo
    img = img.crop(tuple(crop))
    for axis in (1, 0) if vertical_first else (0, 1):
        target, pass_box = list(img.size), [0.0, 0.0, float(img.width), float(img.height)]
        target[axis] = box[axis + 2] - box[axis]
        pass_box[axis], pass_box[axis + 2] = src_box[axis], src_box[axis + 2]
        img = img.resize((target[0], target[1]), resample, box=tuple(pass_box))
    return img


def preprocess(img: Image.Image, cfg: Preprocess) -> np.ndarray:
    """open_clip's eval transform minus ToTensor/Normalize: uint8 [3, S, S], C-contiguous."""
    if img.mode != "RGB":
        img = _to_rgb(img)
    pixels = np.asarray(_resize_crop(img, cfg))
    height, width = pixels.shape[:2]
    size = cfg.size
    if (height, width) != (size, size):  # 'longest': center_crop_or_pad pads (S - d) // 2 before
        out = np.full((size, size, 3), cfg.fill_color, dtype=np.uint8)
        top, left = (size - height) // 2, (size - width) // 2
        out[top : top + height, left : left + width] = pixels
        pixels = out
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def image_to_tensor(
    data: bytes, cfg: Preprocess, *, max_pixels: int, min_side: int = 2, draft: bool = False
) -> np.ndarray:
    """Bytes -> tensor, the one call the gateway makes per image from a worker thread."""
    img = load_image(data, max_pixels=max_pixels, min_side=min_side, draft_size=cfg.size if draft else None)
    try:
        return preprocess(img, cfg)
    except MemoryError:
        raise ImageLoadError("Image is too large to process.", reason="too_many_pixels") from None
