"""open_clip weights → two verified TorchScript towers → a Triton model repository.

Every model folder is built in a staging directory and moved into the repository only when
both towers have been scripted and checked against eager open_clip, so a failed export never
leaves a half-written model for Triton to trip over.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from triton_clip.repository import RUNNER, Target, TowerSpec, write_model
from triton_clip.threads import DEFAULT_PLAN, default_cores, model_threads
from triton_clip.towers import ExportError, ImageTower, TextTower, to_torchscript
from triton_clip.versions import RANDOM_WEIGHTS, model_names, open_clip_name

log = logging.getLogger("triton_clip.export")
TEXT_BUCKETS = (16, 32, 77)
FP32_TOLERANCE = 1e-4
FP16_MIN_COSINE = 0.999

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    version: str
    pretrained: str = "openai"          # open_clip tag, a checkpoint path, or "none"
    target: Target = "cpu"
    fp16: bool = False
    cpu_threads: int = default_cores()  # the cores the CPU thread plan is sized for
    cpu_plan: str = DEFAULT_PLAN         # triton_clip/threads.py: one plan across every served tower
    seed: int = 0                        # random init is reproducible, so tests can rebuild the reference


def _import_open_clip():  # noqa: ANN202 - keeps `--help` fast and torch warnings quiet
    warnings.filterwarnings("ignore", category=FutureWarning)
    import open_clip

    return open_clip


def load_model(request: ExportRequest):  # noqa: ANN201
    """open_clip model with the requested weights, or an ExportError that says what to do."""
    open_clip = _import_open_clip()
    name = open_clip_name(request.version)
    if name not in open_clip.list_models():
        raise ExportError(
            f"unknown CLIP version {request.version!r} (open_clip name {name!r}). Use a Roboflow id "
            "(ViT-B-16, ViT-B-32, ViT-L-14, ViT-L-14-336px, RN50, RN101, RN50x4, RN50x16, RN50x64), "
            "any name from open_clip.list_models(), or register a config with --model-config."
        )
    source = request.pretrained
    if source == RANDOM_WEIGHTS:
        torch.manual_seed(request.seed)
        return open_clip.create_model(name, pretrained=None).eval()
    looks_like_path = os.sep in source or source.endswith((".pt", ".pth", ".bin", ".safetensors"))
    if looks_like_path and not Path(source).is_file():
        raise ExportError(f"checkpoint file {source!r} does not exist.")
    if not looks_like_path and source not in open_clip.list_pretrained_tags_by_model(name):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise ExportError(f"{name!r} has no pretrained tag {source!r}. Known tags: {tags}.")
    try:
        return open_clip.create_model(name, pretrained=source).eval()
    except Exception as exc:  # noqa: BLE001 - open_clip raises RuntimeError/OSError/HF errors alike
        raise ExportError(
            f"could not load pretrained weights {source!r} for {name!r} (download failed or the file is "
            f"not a checkpoint: {str(exc)[:300]}). Offline? Either pass a local checkpoint with "
            "--checkpoint PATH (or CLIP_PRETRAINED=/path/to/file), or use --pretrained none for random "
            "weights (smoke tests only)."
        ) from exc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(name: str, got: torch.Tensor, want: torch.Tensor, fp16: bool) -> None:
    if fp16:
        cos = torch.nn.functional.cosine_similarity(got.float(), want.float(), dim=-1).min().item()
        if cos < FP16_MIN_COSINE:
            raise ExportError(f"{name}: fp16 TorchScript diverges from eager fp32 (min cosine {cos:.5f}).")
        return
    diff = (got - want).abs().max().item()
    if diff > FP32_TOLERANCE:
        raise ExportError(f"{name}: TorchScript differs from eager open_clip by {diff:.2e} > {FP32_TOLERANCE}.")


def _verify(model, image_ts, text_ts, size: int, mean, std, context: int, fp16: bool) -> None:  # noqa: ANN001
    """Scripted towers must reproduce eager open_clip (the reference) before anything is written."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=gen)
    ids = torch.randint(1, 49000, (3, context), generator=gen)
    ids[:, 0] = 49406
    ids[:, 10:] = 0
    ids[:, 9] = 49407
    normalised = (pixels.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        want_image, want_text = model.encode_image(normalised), model.encode_text(ids)
        _check("image tower", image_ts(pixels), want_image, fp16)
        for length in (TEXT_BUCKETS[0], context):
            _check(f"text tower (L={length})", text_ts(ids[:, :length]), want_text, fp16)


def export_version(request: ExportRequest, repository: Path, progress: Progress = lambda _: None) -> Path:
    """Export both towers of one version; returns the image model folder. Atomic per version."""
    open_clip = _import_open_clip()
    image_name, text_name = model_names(request.version)
    progress(f"{request.version}: loading open_clip model (weights: {request.pretrained})")
    model = load_model(request)
    tokenizer = open_clip.get_tokenizer(open_clip_name(request.version))
    if type(tokenizer).__name__ != "SimpleTokenizer":
        raise ExportError(f"tokenizer {type(tokenizer).__name__} is not supported by the gateway (CLIP BPE only).")
    pre = open_clip.get_model_preprocess_cfg(model)
    size = int(pre["size"][0] if isinstance(pre["size"], (tuple, list)) else pre["size"])
    if isinstance(pre["size"], (tuple, list)) and pre["size"][0] != pre["size"][1]:
        raise ExportError(f"non-square input size {pre['size']} is not supported.")
    context = int(model.context_length)
    embed_dim = int(model.text_projection.shape[1] if isinstance(model.text_projection, torch.Tensor)
                    else model.text_projection.out_features) if hasattr(model, "text_projection") else 0

    progress(f"{request.version}: scripting image and text towers")
    source = copy.deepcopy(model) if request.fp16 else model  # .half() must not touch the fp32 reference
    image_tower, text_tower = ImageTower(source, pre["mean"], pre["std"]), TextTower(source)
    if request.fp16:
        image_tower, text_tower = image_tower.half(), text_tower.half()
    image_ts = to_torchscript(image_tower, torch.zeros(2, 3, size, size, dtype=torch.uint8))
    text_ts = to_torchscript(text_tower, torch.zeros(2, context, dtype=torch.long))
    with torch.inference_mode():
        embed_dim = int(image_ts(torch.zeros(1, 3, size, size, dtype=torch.uint8)).shape[1])

    progress(f"{request.version}: verifying against eager open_clip")
    _verify(model, image_ts, text_ts, size, pre["mean"], pre["std"], context, request.fp16)

    random_weights = request.pretrained == RANDOM_WEIGHTS
    vocab = Path(open_clip.tokenizer.default_bpe())
    meta = {
        "clip_version": request.version,
        "open_clip_model": open_clip_name(request.version),
        "pretrained": "none" if random_weights else Path(request.pretrained).name,
        "weights_random": "true" if random_weights else "false",
        "seed": str(request.seed) if random_weights else "",
        "precision": "fp16" if request.fp16 else "fp32",
        "embed_dim": str(embed_dim),
    }
    image_params = {**meta, "tower": "image", "image_size": str(size),
                    "mean": ",".join(map(str, pre["mean"])), "std": ",".join(map(str, pre["std"])),
                    "interpolation": str(pre["interpolation"]), "resize_mode": str(pre["resize_mode"]),
                    "fill_color": str(pre.get("fill_color", 0))}
    text_params = {**meta, "tower": "text", "context_length": str(context), "tokenizer": "clip-bpe",
                   "tokenizer_sha256": _sha256(vocab), "sot_id": "49406", "eot_id": "49407",
                   "text_buckets": ",".join(str(b) for b in TEXT_BUCKETS if b <= context)}
    plan = {t: model_threads(t, request.cpu_threads, request.cpu_plan) if request.target == "cpu" else None
            for t in ("image", "text")}
    specs = [
        (TowerSpec(image_name, "image", request.target, [3, size, size], embed_dim, image_params,
                   threads=plan["image"]), image_ts),
        (TowerSpec(text_name, "text", request.target, [-1], embed_dim, text_params,
                   warmup_dims=[[b] for b in TEXT_BUCKETS if b <= context], threads=plan["text"]), text_ts),
    ]

    progress(f"{request.version}: writing {image_name} and {text_name}")
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=repository.parent))
    try:
        for spec, module in specs:
            scripted = staging / f"{spec.name}.pt"
            module.save(str(scripted))
            write_model(staging / spec.name, spec, scripted)
            scripted.unlink()
        (staging / image_name / "clip_version.json").write_text(
            json.dumps({"image": image_params, "text": text_params}, indent=2) + "\n"
        )
        shutil.copyfile(vocab, staging / text_name / vocab.name)
        for spec, _ in specs:
            final = repository / spec.name
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging / spec.name, final)
    except BaseException:
        for spec, _ in specs:  # never leave one tower without the other
            shutil.rmtree(repository / spec.name, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if random_weights:
        log.warning("%s exported with RANDOM weights (--pretrained none): embeddings are meaningless.", request.version)
    return repository / image_name


def refresh_runner(version: str, repository: Path) -> bool:
    """Keep each CPU model's copied `model.py` in step with this checkout's runner (cheap, no re-export)."""
    changed = False
    for name in model_names(version):
        copy_path = repository / name / "1" / "model.py"
        if copy_path.is_file() and copy_path.read_bytes() != RUNNER.read_bytes():
            shutil.copyfile(RUNNER, copy_path)
            changed = True
    return changed


def is_exported(version: str, repository: Path, target: Target) -> bool:
    """A version counts as exported when both towers exist for the same target."""
    marker = 'platform: "pytorch_libtorch"' if target == "gpu" else 'backend: "python"'
    for name in model_names(version):
        config = repository / name / "config.pbtxt"
        if not (config.is_file() and (repository / name / "1" / "model.pt").is_file() and marker in config.read_text()):
            return False
    return True
