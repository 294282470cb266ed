"""Roboflow's CLIP version ids and how each maps to an open_clip model name."""

from __future__ import annotations

from gateway.contract import model_names

__all__ = [
    "DEFAULT_PRETRAINED",
    "DEFAULT_VERSION",
    "RANDOM_WEIGHTS",
    "ROBOFLOW_VERSIONS",
    "model_names",
    "open_clip_name",
]

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


def open_clip_name(version: str) -> str:
    return ROBOFLOW_VERSIONS.get(version) or PERCEPTION_ENCODER_VERSIONS.get(version, version)
