"""Triton Python-backend model: one image file's bytes -> the uint8 [3, S, S] the image tower takes.

The preprocessing step of the `bytes -> preprocessing -> image tower` ensemble (GATEWAY_IMAGE_TRANSPORT=encoded).
Copied as `model.py` into `clip-<version>-preprocess/1/`, next to a byte copy of the gateway's own decode code
(`gateway/images/decode.py`, `gateway/errors.py`, `gateway/contract.py`; triton_clip/preprocess_model.py ships
them), which goes first on sys.path: the decode here IS the gateway's, not a re-implementation.

* `decode_device: cpu` (the CPU target): the exact Pillow path, `image_to_tensor`, bit-identical to the tensor
  transport.
* `decode_device: cuda` (the GPU target): JPEGs are decoded by nvJPEG (`torchvision.io.decode_jpeg(device="cuda")`),
  oriented from their EXIF tag and resized/cropped on the GPU with torch (not bit-exact: its parity is measured
  by the GPU script); every other format, and a JPEG nvJPEG refuses, falls back to the exact CPU path.

A file that cannot be decoded fails its request with `gateway.contract.format_image_error`, which the gateway
turns back into the 400 its own decode would have given. Tensors cross the stub boundary by DLPack (see runner.py).
"""

import json
import os
import sys

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isdir(os.path.join(_HERE, "gateway")) and sys.path[:1] != [_HERE]:
    sys.path.insert(0, _HERE)  # the shipped copy wins over any installed `gateway` package

from gateway.contract import ENCODED_INPUT, IMAGE_INPUT, Param, format_image_error  # noqa: E402
from gateway.errors import ImageLoadError  # noqa: E402
from gateway.images import decode  # noqa: E402

# Pillow's own DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS): the gateway's limit comes first.
DEFAULT_MAX_PIXELS = 178_956_970
# EXIF orientation -> ops on a [C, H, W] tensor, the same transposes as Pillow's `ImageOps.exif_transpose`.
_ORIENT = {
    2: lambda x: x.flip(2),  # FLIP_LEFT_RIGHT
    3: lambda x: x.rot90(2, (1, 2)),  # ROTATE_180
    4: lambda x: x.flip(1),  # FLIP_TOP_BOTTOM
    5: lambda x: x.transpose(1, 2),  # TRANSPOSE
    6: lambda x: x.rot90(-1, (1, 2)),  # ROTATE_270 (clockwise)
    7: lambda x: x.transpose(1, 2).flip((1, 2)),  # TRANSVERSE
    8: lambda x: x.rot90(1, (1, 2)),  # ROTATE_90 (counter-clockwise)
}


def orient(chw: torch.Tensor, orientation: int) -> torch.Tensor:
    op = _ORIENT.get(orientation)
    return op(chw).contiguous() if op else chw


class Decoder:
    """What one preprocessing instance does to a list of files; no Triton types (unit-tested on CPU)."""

    def __init__(self, params: dict) -> None:
        self.cfg = decode.Preprocess(
            size=int(params[Param.IMAGE_SIZE]),
            resize_mode=params.get(Param.RESIZE_MODE, "shortest"),
            interpolation=params.get(Param.INTERPOLATION, "bicubic"),
            fill_color=int(params.get(Param.FILL_COLOR, "0")),
        )
        self.max_pixels = int(params.get(Param.MAX_IMAGE_PIXELS, DEFAULT_MAX_PIXELS))
        self.device = torch.device(params.get(Param.DECODE_DEVICE, "cpu"))

    def exact(self, data: bytes) -> torch.Tensor:
        """The gateway's own decode + resize (the tensor transport's path), on the CPU."""
        return torch.from_numpy(decode.image_to_tensor(data, self.cfg, max_pixels=self.max_pixels, min_side=1))

    def run(self, files: list) -> list:
        """One uint8 [3, S, S] tensor (on `device`) or one ImageLoadError per file, in order."""
        if self.device.type == "cpu":
            return [self._exact_or_error(data) for data in files]
        return self._gpu(files)

    def _exact_or_error(self, data: bytes):  # noqa: ANN202
        try:
            return self.exact(data).to(self.device)
        except ImageLoadError as exc:
            return exc

    # --- GPU target -------------------------------------------------------------------------------
    def _gpu(self, files: list) -> list:
        out: list = [None] * len(files)
        jpegs: list[tuple[int, int]] = []  # (index, EXIF orientation)
        for i, data in enumerate(files):
            try:
                if decode.check_header(data, max_pixels=self.max_pixels, min_side=1) == "JPEG":
                    jpegs.append((i, jpeg_orientation(data)))
            except ImageLoadError as exc:
                out[i] = exc
        if jpegs:
            decoded = self._nvjpeg([files[i] for i, _ in jpegs])
            for (i, orientation), chw in zip(jpegs, decoded):
                if chw is not None:
                    out[i] = self.resize(orient(chw, orientation))
        for i, value in enumerate(out):
            if value is None:  # not a JPEG, or one nvJPEG refused (CMYK, lossless...): the exact CPU path decides
                out[i] = self._exact_or_error(files[i])
        return out

    def _nvjpeg(self, files: list) -> list:
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in files]
        try:
            return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device))  # one batched call
        except RuntimeError:  # one bad file fails the batch: find which, one by one
            out = []
            for t in tensors:
                try:
                    out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError:
                    out.append(None)
            return out

    def resize(self, chw: torch.Tensor) -> torch.Tensor:
        """open_clip's resize + centre crop (+ pad for 'longest') in torch: the decode module's sizes and offsets,
        torch's antialiased filter (not Pillow's fixed-point one: close, not bit-exact)."""
        cfg, (_, height, width) = self.cfg, chw.shape
        new_w, new_h = decode._resized_size(width, height, cfg)
        crop_w, crop_h = min(cfg.size, new_w), min(cfg.size, new_h)
        left, top = int(round((new_w - crop_w) / 2.0)), int(round((new_h - crop_h) / 2.0))
        img = chw
        if (new_w, new_h) != (width, height):
            resized = torch.nn.functional.interpolate(
                chw[None].float(), size=(new_h, new_w), mode=cfg.interpolation, align_corners=False, antialias=True
            )
            img = resized[0].round_().clamp_(0, 255).to(torch.uint8)
        img = img[:, top : top + crop_h, left : left + crop_w]
        if (crop_h, crop_w) != (cfg.size, cfg.size):
            out = torch.full((3, cfg.size, cfg.size), cfg.fill_color, dtype=torch.uint8, device=img.device)
            pad_top, pad_left = (cfg.size - crop_h) // 2, (cfg.size - crop_w) // 2
            out[:, pad_top : pad_top + crop_h, pad_left : pad_left + crop_w] = img
            img = out
        return img.contiguous()


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation tag of a JPEG (1 when absent or unreadable), read from the header by Pillow."""
    import io

    from PIL import Image

    try:
        return int(Image.open(io.BytesIO(data)).getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is not an orientation
        return 1


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        torch.set_num_threads(int(params.get("num_threads", "1")))
        self.decoder = Decoder(params)
        self.output_name = config["output"][0]["name"] if config.get("output") else IMAGE_INPUT

    def execute(self, requests):
        files, owners = [], []
        for n, request in enumerate(requests):
            rows = from_dlpack(pb_utils.get_input_tensor_by_name(request, ENCODED_INPUT).to_dlpack())
            for row in rows.reshape(rows.shape[0], -1):
                files.append(row.numpy().tobytes())
                owners.append(n)
        try:
            results = self.decoder.run(files)
        except Exception as exc:  # noqa: BLE001 - reported per request, the server stays up
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        per_request: list[list] = [[] for _ in requests]
        for owner, result in zip(owners, results):
            per_request[owner].append(result)
        responses = []
        for results in per_request:
            failed = next((r for r in results if isinstance(r, ImageLoadError)), None)
            if failed is not None:
                error = pb_utils.TritonError(format_image_error(failed.reason, failed.cause))
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            batch = torch.stack(results).contiguous()
            tensor = pb_utils.Tensor.from_dlpack(self.output_name, to_dlpack(batch))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses
