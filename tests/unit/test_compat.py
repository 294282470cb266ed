"""The libtorch table (triton_clip/compat.py): a gpu export refuses a torch newer than Triton's libtorch."""

from __future__ import annotations

import pytest

from triton_clip.compat import DEFAULT_TRITON_IMAGE, TRITON_RELEASES, check_torch, release_of
from triton_clip.towers import ExportError


def test_default_image_is_in_the_table_and_matches_the_export_image_pin() -> None:
    from pathlib import Path

    tag, release = release_of(DEFAULT_TRITON_IMAGE)
    assert tag == "24.10" and release is not None and release.torch.startswith("2.5")
    dockerfile = (Path(__file__).resolve().parents[2] / "docker" / "export.Dockerfile").read_text()
    assert "ARG TORCH_VERSION=2.5.1" in dockerfile  # the supported export path loads in 24.10
    check_torch("gpu", "2.5.1", DEFAULT_TRITON_IMAGE)


@pytest.mark.parametrize("torch_version", ["2.6.0", "2.14.1+cu130", "3.0.0"])
def test_newer_torch_is_refused_unless_allowed(torch_version: str) -> None:
    with pytest.raises(ExportError, match="may not load"):
        check_torch("gpu", torch_version, "nvcr.io/nvidia/tritonserver:24.10-py3")
    check_torch("gpu", torch_version, "nvcr.io/nvidia/tritonserver:24.10-py3", allow_newer=True)
    check_torch("cpu", torch_version)  # the CPU target runs the exporting torch itself


def test_older_torch_and_every_tag_form() -> None:
    check_torch("gpu", "2.4.1", "tritonserver:24.10-py3")
    assert release_of("24.10-py3")[0] == "24.10"
    assert release_of("nvcr.io/nvidia/tritonserver:24.08-py3-min")[0] == "24.08"
    assert all(r.cuda.startswith("12.") and r.driver.isdigit() for r in TRITON_RELEASES.values())


def test_unknown_tag_is_refused_with_where_to_add_it() -> None:
    with pytest.raises(ExportError, match="triton_clip/compat.py"):
        check_torch("gpu", "2.5.1", "nvcr.io/nvidia/tritonserver:99.01-py3")
