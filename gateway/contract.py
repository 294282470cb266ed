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

# CLIP BPE special tokens (open_clip's SimpleTokenizer: 49408 ids, the two specials last).
SOT_ID, EOT_ID = 49406, 49407
PAD_ID = 0

# Text lengths the text tower is warmed up at and the gateway pads to: Triton batches equal shapes only.
TEXT_BUCKETS: tuple[int, ...] = (16, 32, 77)


class Param:
    """Model-config `parameters` keys (string values) the exporter writes and the gateway reads."""

    CLIP_VERSION = "clip_version"
    TOWER = "tower"                      # "image" | "text"
    OPEN_CLIP_MODEL = "open_clip_model"
    PRETRAINED = "pretrained"
    WEIGHTS_RANDOM = "weights_random"    # "true" | "false"
    PRECISION = "precision"              # "fp32" | "fp16"
    ACTIVATION = "activation"            # "quick_gelu" | "gelu"
    EMBED_DIM = "embed_dim"
    IMAGE_SIZE = "image_size"
    MEAN, STD = "mean", "std"
    INTERPOLATION, RESIZE_MODE, FILL_COLOR = "interpolation", "resize_mode", "fill_color"
    CONTEXT_LENGTH = "context_length"
    TEXT_BUCKETS = "text_buckets"        # comma-separated ints, ascending, ending at context_length
    TOKENIZER, TOKENIZER_SHA256 = "tokenizer", "tokenizer_sha256"
    SOT_ID, EOT_ID = "sot_id", "eot_id"
    FAMILY = "family"                    # triton_clip/families.py: clip, siglip, pe, mobileclip, ...
    TEXT_CLEAN = "text_clean"            # the tokenizer's text cleaning (gateway/text/cleaning.py)
    TEXT_BUCKETS_EXACT = "text_buckets_exact"  # "true" only when the export proved short inputs exact
    BUILD_ID = "build_id"                # digest of what the towers were built from (triton_clip/provenance.py)


MODEL_PREFIX = "clip-"
SAFE_VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def model_names(version: str) -> tuple[str, str]:
    """Triton model names of the (image, text) towers of one version."""
    if not SAFE_VERSION_ID.match(version):
        raise ValueError(f"version id {version!r} must match {SAFE_VERSION_ID.pattern} to be a Triton model name")
    return f"{MODEL_PREFIX}{version}-image", f"{MODEL_PREFIX}{version}-text"


def text_buckets(context_length: int, buckets: Iterable[int] = TEXT_BUCKETS) -> tuple[int, ...]:
    """The buckets a text tower of this context serves: those that fit, always ending at the context."""
    fitting = sorted({b for b in buckets if b < context_length} | {context_length})
    return tuple(fitting)


def format_buckets(buckets: Iterable[int]) -> str:
    return ",".join(str(b) for b in buckets)


def parse_buckets(value: str) -> tuple[int, ...]:
    return tuple(int(b) for b in value.split(",") if b.strip())
