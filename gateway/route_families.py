"""Which served versions each route family answers for, by the `family` their export recorded.

`/perception_encoder/*` serves Perception Encoder versions (family `pe-core`), as Roboflow's
server does; `/clip/*` serves every other family (OpenAI/LAION CLIP, SigLIP/SigLIP2,
MobileCLIP/MobileCLIP2, EVA...). A version asked for on the other route family is a 404 that
lists what that route serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PERCEPTION_ENCODER_FAMILY = "pe-core"


@dataclass(frozen=True)
class RouteFamily:
    label: str  # how error messages name the version
    default_setting: str  # Settings attribute holding the default version id
    serves: Callable[[str], bool]  # family -> answered by these routes


ROUTE_FAMILIES: dict[str, RouteFamily] = {
    "clip": RouteFamily("CLIP", "clip_version_id", lambda family: family != PERCEPTION_ENCODER_FAMILY),
    "perception_encoder": RouteFamily(
        "Perception Encoder", "perception_encoder_version_id", lambda family: family == PERCEPTION_ENCODER_FAMILY
    ),
}
