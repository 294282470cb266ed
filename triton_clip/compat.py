"""Which torch wrote the TorchScript, and which libtorch will load it: the one table of Triton image tags.

TorchScript is not forward compatible: a file written by a newer torch may not load in an older libtorch.
The `gpu` target is loaded by the pytorch_libtorch backend of NVIDIA's Triton image, so the export refuses
a torch newer (major.minor) than that image's libtorch unless told otherwise (--allow-newer-torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triton_clip.towers import ExportError

DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


@dataclass(frozen=True)
class TritonRelease:
    torch: str  # the NGC PyTorch build inside the image's pytorch_libtorch backend
    cuda: str
    driver: str  # minimum NVIDIA driver; datacenter GPUs also run on the compatibility branches below
    datacenter: str


_R545_COMPAT = "470.57+ (R470), 525.85+ (R525), 535.86+ (R535), 545.23+ (R545)"
# From NVIDIA's Triton release notes / Frameworks Support Matrix; add a row when you move to a new tag.
TRITON_RELEASES: dict[str, TritonRelease] = {
    "24.05": TritonRelease("2.4.0a0", "12.4.1", "545", _R545_COMPAT),
    "24.06": TritonRelease("2.4.0a0", "12.5.0", "555", _R545_COMPAT),
    "24.07": TritonRelease("2.4.0a0", "12.5.1", "555", _R545_COMPAT),
    "24.08": TritonRelease("2.5.0a0", "12.6.0", "560", _R545_COMPAT),
    "24.09": TritonRelease("2.5.0a0", "12.6.1", "560", _R545_COMPAT),
    "24.10": TritonRelease("2.5.0a0", "12.6.2", "560", _R545_COMPAT),
}


def release_of(image: str) -> tuple[str, TritonRelease | None]:
    """`nvcr.io/nvidia/tritonserver:24.10-py3` -> ("24.10", its row), or the tag and None when unknown."""
    tag = image.rsplit(":", 1)[-1] if ":" in image else image
    match = re.match(r"^(\d{2}\.\d{2})", tag)
    key = match.group(1) if match else tag
    return key, TRITON_RELEASES.get(key)


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", version)
    if not match:
        raise ExportError(f"cannot read a torch version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def check_torch(
    target: str, torch_version: str, triton_image: str = DEFAULT_TRITON_IMAGE, allow_newer: bool = False
) -> None:
    """Refuse a gpu export that the configured Triton image's libtorch may not load."""
    if target != "gpu" or allow_newer:
        return
    tag, release = release_of(triton_image)
    if release is None:
        known = ", ".join(TRITON_RELEASES)
        raise ExportError(
            f"Triton image {triton_image!r} (tag {tag}) is not in triton_clip/compat.py (known: {known}); its "
            "libtorch version is unknown. Add the tag there, or pass --allow-newer-torch if you checked it."
        )
    if _major_minor(torch_version) > _major_minor(release.torch):
        raise ExportError(
            f"torch {torch_version} writes TorchScript that the libtorch {release.torch} of {triton_image} may not "
            "load. Export with the export image (docker/export.Dockerfile pins torch 2.5.1 for Triton 24.10), "
            "or pass --allow-newer-torch to export anyway."
        )
