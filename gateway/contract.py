"""The export ↔ gateway contract: what the exporter writes into Triton model configs and the gateway reads back.

Dependency-free on purpose (standard library only): the exporter (torch) and the gateway (no torch) both
import it, so a name can never drift between the two sides. tests/integration/test_contract_module.py
proves that a freshly exported config and the gateway agree through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Tensor names follow the libtorch backend's `<name>__<index>` rule; the CPU (Python backend) target uses the same.
IMAGE_INPUT, IMAGE_OUTPUT = "pixel_values__0", "image_embeds__0"
TEXT_INPUT, TEXT_OUTPUT = "input_ids__0", "text_embeds__0"
TENSORS: dict[str, tuple[str, str]] = {"image": (IMAGE_INPUT, IMAGE_OUTPUT), "text": (TEXT_INPUT, TEXT_OUTPUT)}
# The encoded-image ensemble (GATEWAY_IMAGE_TRANSPORT=encoded): one request per image, its file's bytes as
# UINT8 [1, n] (not BYTES: the 2.51 Python-backend stub crashes on BYTES inputs with numpy 2), ragged-batched.
ENCODED_INPUT = "image_bytes__0"

# CLIP BPE special tokens (open_clip's SimpleTokenizer: 49408 ids, the two specials last).
SOT_ID, EOT_ID = 49406, 49407
PAD_ID = 0

# Text lengths the text tower is warmed up at and the gateway pads to: Triton batches equal shapes only.
TEXT_BUCKETS: tuple[int, ...] = (16, 32, 77)


class Param:
    """Model-config `parameters` keys (string values) the exporter writes and the gateway reads."""

    CLIP_VERSION = "clip_version"
    TOWER = "tower"  # "image" | "text"
    OPEN_CLIP_MODEL = "open_clip_model"
    PRETRAINED = "pretrained"
    WEIGHTS_RANDOM = "weights_random"  # "true" | "false"
    PRECISION = "precision"  # "fp32" | "fp16"
    ACTIVATION = "activation"  # "quick_gelu" | "gelu"
    EMBED_DIM = "embed_dim"
    IMAGE_SIZE = "image_size"
    MEAN, STD = "mean", "std"
    INTERPOLATION, RESIZE_MODE, FILL_COLOR = "interpolation", "resize_mode", "fill_color"
    CONTEXT_LENGTH = "context_length"
    TEXT_BUCKETS = "text_buckets"  # comma-separated ints, ascending, ending at context_length
    TOKENIZER, TOKENIZER_SHA256 = "tokenizer", "tokenizer_sha256"
    SOT_ID, EOT_ID = "sot_id", "eot_id"
    FAMILY = "family"  # triton_clip/families.py: clip, siglip, pe, mobileclip, ...
    TEXT_CLEAN = "text_clean"  # the tokenizer's text cleaning (gateway/text/cleaning.py)
    TEXT_BUCKETS_EXACT = "text_buckets_exact"  # "true" only when the export proved short inputs exact
    BUILD_ID = "build_id"  # digest of what the towers were built from (triton_clip/provenance.py)
    MAX_IMAGE_PIXELS = "max_image_pixels"  # preprocessing model: its own bomb backstop (the gateway checks first)
    DECODE_DEVICE = "decode_device"  # preprocessing model: "cpu" (exact Pillow) | "cuda" (nvJPEG for JPEGs)


# `tower` values of the per-version models next to the two towers.
TOWER_PREPROCESS, TOWER_ENCODED = "preprocess", "image_encoded"


MODEL_PREFIX = "clip-"
SAFE_VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def model_names(version: str) -> tuple[str, str]:
    """Triton model names of the (image, text) towers of one version."""
    if not SAFE_VERSION_ID.match(version):
        raise ValueError(f"version id {version!r} must match {SAFE_VERSION_ID.pattern} to be a Triton model name")
    return f"{MODEL_PREFIX}{version}-image", f"{MODEL_PREFIX}{version}-text"


def encoded_model_names(version: str) -> tuple[str, str]:
    """Triton model names of the (preprocessing model, bytes -> embedding ensemble) of one version."""
    image, _ = model_names(version)
    return f"{MODEL_PREFIX}{version}-preprocess", f"{image}-encoded"


# A decode failure inside Triton's preprocessing model travels as this error message, so the gateway can
# answer the same 400 as its own decode would (gateway/errors.py `image_error_from_triton`).
IMAGE_ERROR_MARKER = "clip-image-error"
_IMAGE_ERROR = re.compile(IMAGE_ERROR_MARKER + r" reason=([a-z_]+): (.*)", re.S)


def format_image_error(reason: str, cause: str) -> str:
    return f"{IMAGE_ERROR_MARKER} reason={reason}: {cause}"


def parse_image_error(message: str) -> tuple[str, str] | None:
    """(reason, cause) of a message made by `format_image_error` (anywhere in it), else None."""
    match = _IMAGE_ERROR.search(message)
    return (match.group(1), match.group(2)) if match else None


def text_buckets(context_length: int, buckets: Iterable[int] = TEXT_BUCKETS) -> tuple[int, ...]:
    """The buckets a text tower of this context serves: those that fit, always ending at the context."""
    fitting = sorted({b for b in buckets if b < context_length} | {context_length})
    return tuple(fitting)


def format_buckets(buckets: Iterable[int]) -> str:
    return ",".join(str(b) for b in buckets)


def parse_buckets(value: str) -> tuple[int, ...]:
    return tuple(int(b) for b in value.split(",") if b.strip())
