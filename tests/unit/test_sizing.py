"""GPU sizing (triton_clip/sizing.py) across the nine Roboflow ids: fits the budget, shrinks for big models.

Parameter counts come from the real open_clip architectures, built on the meta device (no memory, no time).
"""

from __future__ import annotations

import logging

import pytest

from triton_clip.sizing import GIB, ModelShape, ladder, shape_of, size_gpu
from triton_clip.towers import ExportError
from triton_clip.versions import ROBOFLOW_VERSIONS

# The table in docs/deploy.md ("GPU sizing"): (fp16 image max, text max, instances) on a 16 GB GPU.
EXPECTED_16GB_FP16 = {
    "ViT-B-16": (256, 512, 2),
    "ViT-B-32": (256, 512, 2),
    "ViT-L-14": (256, 256, 2),
    "ViT-L-14-336px": (64, 256, 2),
    "RN50": (256, 512, 2),
    "RN101": (256, 512, 2),
    "RN50x4": (128, 512, 2),
    "RN50x16": (64, 256, 2),
    "RN50x64": (64, 512, 1),
}


@pytest.fixture(scope="module")
def shapes() -> dict[str, ModelShape]:
    import open_clip

    logging.getLogger().setLevel(logging.ERROR)  # "No pretrained weights loaded" x9
    out = {}
    for version, name in ROBOFLOW_VERSIONS.items():
        out[version] = shape_of(open_clip.create_model(name, pretrained=None, device="meta"), name)
    return out


@pytest.mark.parametrize("version", list(ROBOFLOW_VERSIONS))
def test_nine_ids_fit_a_16gb_gpu(shapes, version: str) -> None:
    plan = size_gpu(shapes[version], fp16=True, gpu_memory_gb=16)
    got = (plan.image.max_batch_size, plan.text.max_batch_size, plan.image.instances)
    assert got == EXPECTED_16GB_FP16[version]
    assert plan.estimate_bytes <= plan.budget_bytes  # the estimate the formula promises
    assert plan.image_warmup == ladder(plan.image.max_batch_size) and plan.image_warmup[0] == 1


def test_big_models_get_smaller_batches_than_the_old_fixed_256(shapes) -> None:
    for version in ("ViT-L-14-336px", "RN50x64", "RN50x16"):
        assert size_gpu(shapes[version], fp16=True, gpu_memory_gb=16).image.max_batch_size < 256


@pytest.mark.parametrize("version", list(ROBOFLOW_VERSIONS))
def test_more_memory_never_means_smaller_batches(shapes, version: str) -> None:
    small, big = (size_gpu(shapes[version], fp16=False, gpu_memory_gb=gb) for gb in (16, 80))
    assert big.image.max_batch_size * big.image.instances >= small.image.max_batch_size * small.image.instances
    assert big.text.max_batch_size >= small.text.max_batch_size


def test_budget_is_shared_by_versions_on_one_gpu(shapes) -> None:
    alone = size_gpu(shapes["ViT-L-14"], fp16=True, gpu_memory_gb=16)
    shared = size_gpu(shapes["ViT-L-14"], fp16=True, gpu_memory_gb=16, versions_sharing=3)
    assert shared.budget_bytes * 3 == pytest.approx(alone.budget_bytes, rel=1e-6)
    assert shared.image.max_batch_size * shared.image.instances < alone.image.max_batch_size * alone.image.instances


def test_a_model_that_cannot_fit_is_refused(shapes) -> None:
    with pytest.raises(ExportError, match="does not fit"):
        size_gpu(shapes["RN50x64"], fp16=False, gpu_memory_gb=4)
    assert GIB == 2**30


def test_ladder() -> None:
    assert ladder(1) == [1] and ladder(64) == [1, 2, 4, 8, 16, 32, 64] and ladder(48) == [1, 2, 4, 8, 16, 32, 48]
