"""The encoded transport's export side without Triton: configs, shipped code, the runner's CPU paths.

The GPU decode (nvJPEG) itself needs a GPU; what runs here is everything around it: the CPU fallback for
non-JPEGs, the EXIF orientation ops it applies after nvJPEG (against Pillow's exif_transpose), and its torch
resize/crop on CPU tensors (shapes exact, values close to the exact path).
"""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from gateway.contract import (
    ENCODED_INPUT,
    IMAGE_INPUT,
    TOWER_ENCODED,
    encoded_model_names,
    format_image_error,
    parse_image_error,
)
from gateway.errors import ImageLoadError, image_error_from_triton
from gateway.images.decode import Preprocess, check_header, image_to_tensor
from gateway.version_info import versions_from_configs
from triton_clip import preprocess_model
from triton_clip.repository import Batching
from triton_clip.threads import model_threads

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {
    "clip_version": "v1",
    "image_size": "32",
    "resize_mode": "shortest",
    "interpolation": "bicubic",
    "fill_color": "0",
    "embed_dim": "8",
    "build_id": "abc",
}


@pytest.fixture(scope="module")
def runner():
    """triton_clip/preprocess_runner.py with a stand-in for the stub's `triton_python_backend_utils`."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    from triton_clip import preprocess_runner

    return preprocess_runner


def jpeg(img: Image.Image, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    kw = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def gradient(size=(61, 47)) -> Image.Image:
    x = np.linspace(0, 255, size[0])[None, :, None]
    y = np.linspace(0, 255, size[1])[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8))


def test_image_error_round_trip():
    message = "in ensemble 'x', " + format_image_error("not_image", "Data is not image.")
    assert parse_image_error(message) == ("not_image", "Data is not image.")
    err = image_error_from_triton(message)
    assert isinstance(err, ImageLoadError) and err.reason == "not_image"
    assert err.at_index(2).message == ImageLoadError("Data is not image.", index=2).message
    assert image_error_from_triton("some other Triton error") is None


def test_check_header_refuses_what_load_image_refuses_from_the_header():
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    assert check_header(png.getvalue(), max_pixels=10_000) == "PNG"
    for data, kw, reason in [
        (b"", {}, "empty"),
        (b"nope", {}, "not_image"),
        (png.getvalue(), {"max_pixels": 100}, "too_many_pixels"),
        (png.getvalue(), {"max_pixels": 10_000, "min_side": 31}, "too_small"),
    ]:
        with pytest.raises(ImageLoadError) as info:
            check_header(data, **{"max_pixels": 10_000, **kw})
        assert info.value.reason == reason


def test_configs_and_shipped_code(tmp_path):
    names = preprocess_model.write_encoded_models(
        tmp_path, "v1", "cpu", "clip-v1-image", PARAMS, 8, Batching(16, 2000), model_threads("preprocess", 2)
    )
    assert names == list(encoded_model_names("v1")) == ["clip-v1-preprocess", "clip-v1-image-encoded"]
    pre = (tmp_path / names[0] / "config.pbtxt").read_text()
    assert 'backend: "python"' in pre and "allow_ragged_batch: true" in pre and "TYPE_UINT8" in pre
    assert f'name: "{ENCODED_INPUT}"' in pre and f'name: "{IMAGE_INPUT}"' in pre and "dims: [ 3, 32, 32 ]" in pre
    assert "model_warmup" not in pre  # zero bytes are not an image
    assert 'key: "decode_device" value { string_value: "cpu" }' in pre
    ens = (tmp_path / names[1] / "config.pbtxt").read_text()
    assert 'platform: "ensemble"' in ens and '"clip-v1-preprocess"' in ens and '"clip-v1-image"' in ens
    version_dir = tmp_path / names[0] / "1"
    assert (version_dir / "model.py").read_bytes() == (ROOT / "triton_clip" / "preprocess_runner.py").read_bytes()
    for rel in preprocess_model.SHIPPED:  # the gateway's own code, byte for byte
        assert (version_dir / "gateway" / rel).read_bytes() == (ROOT / "gateway" / rel).read_bytes()
    assert not preprocess_model.ship_code(version_dir)
    (version_dir / "gateway" / "images" / "decode.py").write_text("# stale")
    assert preprocess_model.ship_code(version_dir)  # refreshed from this checkout
    gpu = preprocess_model.preprocess_config("p", "gpu", PARAMS, 32, Batching(16, 2000), None)
    assert "KIND_GPU" in gpu and 'key: "decode_device" value { string_value: "cuda" }' in gpu


def test_gateway_discovers_the_ensemble():
    def config(name, **params):
        return {"name": name, "max_batch_size": 8, "parameters": {k: {"string_value": v} for k, v in params.items()}}

    image = config("clip-v1-image", clip_version="v1", tower="image", embed_dim="8", image_size="32")
    text = config("clip-v1-text", clip_version="v1", tower="text", context_length="77", text_buckets="77")
    ensemble = config("clip-v1-image-encoded", clip_version="v1", tower=TOWER_ENCODED)
    assert versions_from_configs([image, text])["v1"].encoded_model == ""
    info = versions_from_configs([image, text, ensemble])["v1"]
    assert info.encoded_model == "clip-v1-image-encoded" and info.public()["encoded_model"] == info.encoded_model
    assert versions_from_configs([ensemble]) == {}  # an ensemble alone is no version


def test_cpu_decoder_is_the_gateway_decode(runner):
    decoder = runner.Decoder(PARAMS)
    data = jpeg(gradient(), orientation=6)
    want = image_to_tensor(data, Preprocess(32), max_pixels=10**8)
    (got,) = decoder.run([data])
    assert got.dtype == torch.uint8 and np.array_equal(got.numpy(), want)
    bad = decoder.run([data[: len(data) // 2], b"junk"])
    assert [type(r) for r in bad] == [ImageLoadError, ImageLoadError]
    assert [r.reason for r in bad] == ["not_image", "not_image"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_ops_match_pillow(runner, orientation):
    data = jpeg(gradient((13, 7)), orientation)
    raw = Image.open(io.BytesIO(data))
    assert runner.jpeg_orientation(data) == orientation
    chw = torch.from_numpy(np.asarray(raw.convert("RGB")).transpose(2, 0, 1).copy())
    want = np.asarray(ImageOps.exif_transpose(raw).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(runner.orient(chw, orientation).numpy(), want)


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
def test_gpu_resize_on_cpu_tensors_is_close_to_exact(runner, mode):
    decoder = runner.Decoder({**PARAMS, "resize_mode": mode})
    img = gradient((90, 41))
    chw = torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())
    got = decoder.resize(chw).numpy().astype(int)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    want = image_to_tensor(buf.getvalue(), Preprocess(32, mode), max_pixels=10**8).astype(int)
    assert got.shape == want.shape == (3, 32, 32)
    assert np.abs(got - want).mean() < 2.0  # a different filter implementation, same geometry


def test_gpu_path_falls_back_to_the_exact_decode(runner, monkeypatch):
    """`decode_device: cuda` without a GPU here: nvJPEG stubbed; non-JPEGs and refused JPEGs take the CPU path."""
    decoder = runner.Decoder(PARAMS)
    decoder.device = torch.device("meta")  # any non-CPU device selects the GPU path
    monkeypatch.setattr(decoder, "_exact_or_error", lambda data: runner.Decoder._exact_or_error(decoder_cpu, data))
    decoder_cpu = runner.Decoder(PARAMS)
    seen = []

    def fake_nvjpeg(files):
        seen.extend(files)
        return [None for _ in files]  # nvJPEG refuses every JPEG: all must fall back

    monkeypatch.setattr(decoder, "_nvjpeg", fake_nvjpeg)
    png = io.BytesIO()
    gradient().save(png, "PNG")
    good_jpeg = jpeg(gradient())
    out = decoder.run([png.getvalue(), good_jpeg, b"junk"])
    assert seen == [good_jpeg]  # only the JPEG went to nvJPEG; junk failed its header first
    assert np.array_equal(out[0].numpy(), image_to_tensor(png.getvalue(), Preprocess(32), max_pixels=10**8))
    assert np.array_equal(out[1].numpy(), image_to_tensor(good_jpeg, Preprocess(32), max_pixels=10**8))
    assert isinstance(out[2], ImageLoadError)


def test_encoded_models_default_per_target():
    from triton_clip.cli import parse_args
    from triton_clip.export import ExportRequest

    assert ExportRequest("v", target="cpu").with_encoded and not ExportRequest("v", target="gpu").with_encoded
    assert ExportRequest("v", target="gpu", encoded_images=True).with_encoded
    assert parse_args([]).encoded_images is None
    assert parse_args(["--encoded-images"]).encoded_images is True
    assert parse_args(["--no-encoded-images"]).encoded_images is False


def test_prune_removes_the_encoded_models_too(tmp_path):
    from triton_clip.provenance import exported_versions, prune

    preprocess_model.write_encoded_models(tmp_path, "v1", "cpu", "clip-v1-image", PARAMS, 8, Batching(16, 2000), None)
    assert sorted(p.name for p in exported_versions(tmp_path)["v1"]) == sorted(encoded_model_names("v1"))
    assert prune(tmp_path, []) == ["v1"] and not any(tmp_path.iterdir())
