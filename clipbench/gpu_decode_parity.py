"""GPU decode parity of the encoded transport: nvJPEG + torch resize vs the exact Pillow path (issue 13 part 2).

Runs the preprocessing model's own `Decoder` (triton_clip/preprocess_runner.py) with `decode_device: cuda` and
with `cpu` on JPEG photos (EXIF-rotated ones included), embeds both with the same open_clip image tower and
prints the worst cosine; exit 1 below --min-cosine (0.9999).
Not run yet: no GPU where it was written. From the repository root, `python -m` needs no install.

    python -m clipbench.gpu_decode_parity --model ViT-B-32 --pretrained none > $OUT/gpu_decode_parity.txt
    python -m clipbench.gpu_decode_parity --device cpu   # smoke test: torch resize path on CPU, Pillow decode
"""

from __future__ import annotations

import argparse
import io
import sys
import types

from gateway.contract import Param


def photos() -> dict[str, bytes]:
    from PIL import Image
    from skimage import data as skdata

    out = {}
    for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field"):
        img = Image.fromarray(getattr(skdata, name)())
        for orientation in (None, 6):
            buf, kw = io.BytesIO(), {"quality": 90}
            if orientation:
                exif = Image.Exif()
                exif[0x0112] = orientation
                kw["exif"] = exif
            img.save(buf, "JPEG", **kw)
            out[f"{name}-exif{orientation or 1}"] = buf.getvalue()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="none", help="open_clip tag, or none (random init, seed 0)")
    parser.add_argument("--device", default="cuda", help="cuda: nvJPEG; cpu: only the torch resize (smoke test)")
    parser.add_argument("--min-cosine", type=float, default=0.9999)
    return parser.parse_args(argv)


def decoder_params(pre: dict, device: str) -> dict[str, str]:
    """The preprocessing model's parameters for an open_clip preprocess config (as the exporter writes them)."""
    size = pre["size"][0] if isinstance(pre["size"], (tuple, list)) else pre["size"]
    return {
        Param.IMAGE_SIZE: str(size),
        Param.RESIZE_MODE: pre["resize_mode"],
        Param.INTERPOLATION: pre["interpolation"],
        Param.FILL_COLOR: str(pre.get("fill_color", 0)),
        Param.DECODE_DEVICE: device,
    }


def fast_path(runner, fast, files: dict[str, bytes], device) -> list:  # noqa: ANN001 - module, Decoder, torch device
    """The GPU path's tensors: nvJPEG on CUDA; on CPU, Pillow's decode then the GPU path's orientation + resize."""
    import numpy as np
    import torch

    if device.type == "cuda":
        return fast.run(list(files.values()))
    from PIL import Image

    got = []
    for data in files.values():
        chw = torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).transpose(2, 0, 1).copy())
        got.append(fast.resize(runner.orient(chw, runner.jpeg_orientation(data))))
    return got


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import open_clip
    import torch

    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    from triton_clip import preprocess_runner as runner

    torch.manual_seed(0)
    model = open_clip.create_model(args.model, pretrained=None if args.pretrained == "none" else args.pretrained)
    pre = open_clip.get_model_preprocess_cfg(model)
    params = decoder_params(pre, args.device)
    device = torch.device(args.device)
    model = model.eval().to(device)
    exact, fast = runner.Decoder({**params, Param.DECODE_DEVICE: "cpu"}), runner.Decoder(params)
    files = photos()
    got = fast_path(runner, fast, files, device)
    want = [exact.exact(data) for data in files.values()]
    mean = torch.tensor(pre["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(pre["std"], device=device).view(1, 3, 1, 1)

    def embed(batch: list) -> torch.Tensor:
        x = torch.stack([t.to(device) for t in batch]).float() / 255
        with torch.inference_mode():
            return model.encode_image((x - mean) / std).float()

    cos = torch.nn.functional.cosine_similarity(embed(got), embed(want), dim=-1).cpu()
    levels = [float((g.cpu().int() - w.int()).abs().float().mean()) for g, w in zip(got, want)]
    for name, c, level in zip(files, cos.tolist(), levels):
        print(f"{name}: cosine {c:.6f}, mean |pixel diff| {level:.3f} levels")
    worst = float(cos.min())
    print(
        f"{args.model} ({args.pretrained}) on {args.device}: {len(files)} JPEGs, min cosine {worst:.6f} "
        f"(threshold {args.min_cosine})"
    )
    return 0 if worst >= args.min_cosine else 1


if __name__ == "__main__":
    sys.exit(main())
