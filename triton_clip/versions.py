"""Roboflow's CLIP version ids and how each maps to an open_clip model name."""

from __future__ import annotations

from gateway.contract import model_names

__all__ = ["DEFAULT_PRETRAINED", "DEFAULT_VERSION", "RANDOM_WEIGHTS", "ROBOFLOW_VERSIONS", "model_names",
           "open_clip_name"]

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


def open_clip_name(version: str) -> str:
    return ROBOFLOW_VERSIONS.get(version, version)
