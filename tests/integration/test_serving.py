"""Triton itself, over gRPC: served embeddings equal eager open_clip, and dynamic batching is real."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio

IMAGE_MODEL, TEXT_MODEL = "clip-clip-tiny-image", "clip-clip-tiny-text"
TOLERANCE = 1e-4
SOT, EOT = 49406, 49407


def infer(triton, model: str, name: str, out: str, array: np.ndarray) -> np.ndarray:
    client = grpcclient.InferenceServerClient(triton.grpc)
    tensor = grpcclient.InferInput(name, list(array.shape), "UINT8" if array.dtype == np.uint8 else "INT64")
    tensor.set_data_from_numpy(array)
    return client.infer(model, [tensor]).as_numpy(out)


def eager_image(model, pixels: np.ndarray) -> np.ndarray:
    """open_clip's own path: ToTensor (/255) then Normalize with the model's mean/std."""
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        return model.encode_image((torch.from_numpy(pixels).float() / 255 - mean) / std).numpy()


def token_batch(rng: np.random.Generator, n: int, n_tokens: int, width: int) -> np.ndarray:
    ids = np.zeros((n, width), dtype=np.int64)
    ids[:, 0] = SOT
    ids[:, 1 : n_tokens - 1] = rng.integers(1, 49000, size=(n, n_tokens - 2))
    ids[:, n_tokens - 1] = EOT
    return ids


@pytest.mark.parametrize("batch", [1, 3, 32])
def test_image_embeddings_match_eager_open_clip(triton, tiny_reference, batch: int) -> None:
    pixels = np.random.default_rng(batch).integers(0, 256, size=(batch, 3, 64, 64), dtype=np.uint8)
    served = infer(triton, IMAGE_MODEL, "pixel_values__0", "image_embeds__0", pixels)
    assert served.shape == (batch, 32) and served.dtype == np.float32
    assert np.abs(served - eager_image(tiny_reference, pixels)).max() <= TOLERANCE


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("length", [5, 16, 77])
def test_text_of_any_length_matches_77_padded_eager(triton, tiny_reference, batch: int, length: int) -> None:
    ids77 = token_batch(np.random.default_rng(length * 100 + batch), batch, min(length, 5), 77)
    with torch.inference_mode():
        reference = tiny_reference.encode_text(torch.from_numpy(ids77)).numpy()
    served = infer(triton, TEXT_MODEL, "input_ids__0", "text_embeds__0", np.ascontiguousarray(ids77[:, :length]))
    assert served.shape == (batch, 32)
    assert np.abs(served - reference).max() <= TOLERANCE


def test_full_context_text_matches_eager(triton, tiny_reference) -> None:
    ids = token_batch(np.random.default_rng(7), 3, 77, 77)
    with torch.inference_mode():
        reference = tiny_reference.encode_text(torch.from_numpy(ids)).numpy()
    served = infer(triton, TEXT_MODEL, "input_ids__0", "text_embeds__0", ids)
    assert np.abs(served - reference).max() <= TOLERANCE


def stats(triton, model: str) -> tuple[int, int]:
    with urllib.request.urlopen(triton.url(f"/v2/models/{model}/stats"), timeout=5) as r:  # noqa: S310 - loopback
        s = json.load(r)["model_stats"][0]
    return int(s["inference_count"]), int(s["execution_count"])


async def _concurrent_singles(triton, model: str, name: str, arrays: list[np.ndarray]) -> None:
    client = grpcaio.InferenceServerClient(triton.grpc)
    try:

        async def one(a: np.ndarray) -> None:
            t = grpcclient.InferInput(name, list(a.shape), "UINT8" if a.dtype == np.uint8 else "INT64")
            t.set_data_from_numpy(a)
            await client.infer(model, [t], client_timeout=60)

        await asyncio.gather(*(one(a) for a in arrays))
    finally:
        await client.close()


@pytest.mark.parametrize("model,name", [(TEXT_MODEL, "input_ids__0"), (IMAGE_MODEL, "pixel_values__0")])
def test_dynamic_batching_merges_concurrent_requests(triton, model: str, name: str) -> None:
    rng = np.random.default_rng(0)
    if model == TEXT_MODEL:
        arrays = [token_batch(rng, 1, 5, 16) for _ in range(32)]
    else:
        arrays = [rng.integers(0, 256, size=(1, 3, 64, 64), dtype=np.uint8) for _ in range(32)]
    inferences0, executions0 = stats(triton, model)
    asyncio.run(_concurrent_singles(triton, model, name, arrays))
    inferences1, executions1 = stats(triton, model)
    assert inferences1 - inferences0 == 32
    assert executions1 - executions0 < inferences1 - inferences0, "32 single requests never shared a batch"
