"""Roboflow's CLIP version ids and how each maps to an open_clip model name."""

from __future__ import annotations

import re

DEFAULT_VERSION = "ViT-B-16"
DEFAULT_PRETRAINED = "openai"
RANDOM_WEIGHTS = "none"

# Roboflow id -> open_clip model name. Any other open_clip name is accepted as its own id.
ROBOFLOW_VERSIONS: dict[str, str] = {
    "ViT-B-16": "ViT-B-16",
    "ViT-B-32": "ViT-B-32",
    "ViT-L-14": "ViT-L-14",
    "ViT-L-14-336px": "ViT-L-14-336",
    "RN50": "RN50",
    "RN101": "RN101",
    "RN50x4": "RN50x4",
    "RN50x16": "RN50x16",
    "RN50x64": "RN50x64",
}

# Roboflow's / Meta's Perception Encoder ids (served on /perception_encoder/*) -> open_clip names.
PERCEPTION_ENCODER_VERSIONS: dict[str, str] = {
    "PE-Core-T16-384": "PE-Core-T-16-384",
    "PE-Core-S16-384": "PE-Core-S-16-384",
    "PE-Core-B16-224": "PE-Core-B-16",
    "PE-Core-L14-336": "PE-Core-L-14-336",
    "PE-Core-G14-448": "PE-Core-bigG-14-448",
}

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def open_clip_name(version: str) -> str:
    return ROBOFLOW_VERSIONS.get(version) or PERCEPTION_ENCODER_VERSIONS.get(version, version)


def model_names(version: str) -> tuple[str, str]:
    """Triton model names of the (image, text) towers of one version."""
    if not _SAFE_ID.match(version):
        raise ValueError(f"version id {version!r} must match {_SAFE_ID.pattern} to be a Triton model name")
    return f"clip-{version}-image", f"clip-{version}-text"
