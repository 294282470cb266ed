"""open_clip weights → two verified TorchScript towers → a Triton model repository.

Every model folder is built in a staging directory and moved into the repository only when
both towers have been scripted and checked against eager open_clip, so a failed export never
leaves a half-written model for Triton to trip over.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gateway.contract import TOWER_PREPROCESS, Param, encoded_model_names, format_buckets, text_buckets
from triton_clip import provenance, sizing
from triton_clip.families import TokenizerExport, check_tokenizer, family_of, tokenizer_export
from triton_clip.families import text_tower as choose_text_tower
from triton_clip.preprocess_model import ship_code, write_encoded_models
from triton_clip.reference import TOKENIZER_TEXTS, VERIFY_TEXTS, import_open_clip, load_model, verify
from triton_clip.repository import RUNNER, Target, TowerSpec, write_model
from triton_clip.threads import DEFAULT_PLAN, default_cores, model_threads
from triton_clip.tokenizer_model import tokenizer_model_name, write_tokenizer_folder
from triton_clip.towers import ExportError, ImageTower, to_torchscript
from triton_clip.versions import RANDOM_WEIGHTS, model_names, open_clip_name

log = logging.getLogger("triton_clip.export")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    version: str
    pretrained: str = "openai"  # open_clip tag, a checkpoint path, or "none"
    target: Target = "cpu"
    fp16: bool = False
    cpu_threads: int = default_cores()  # the cores the CPU thread plan is sized for
    cpu_plan: str = DEFAULT_PLAN  # triton_clip/threads.py: one plan across every served tower
    seed: int = 0  # random init is reproducible, so tests can rebuild the reference
    quick_gelu: str = "auto"  # auto | on | off (a pretrained tag always decides; provenance.py)
    gpu_memory_gb: float = sizing.DEFAULT_GPU_MEMORY_GB
    versions_sharing: int = 1  # versions exported for the same GPU share its memory budget
    # The encoded transport's preprocessing model + ensemble (triton_clip/preprocess_model.py). None: on for cpu;
    # off for gpu, whose stock Triton image has no torch for the Python backend (docker/triton-gpu-decode.Dockerfile).
    encoded_images: bool | None = None

    @property
    def with_encoded(self) -> bool:
        return self.target == "cpu" if self.encoded_images is None else self.encoded_images


@dataclass
class _Scripted:
    """Both towers as TorchScript, with what their configs record about them."""

    image: torch.jit.ScriptModule
    text: torch.jit.ScriptModule
    size: int  # square input side of the image tower
    context: int  # the text tower's context length
    embed_dim: int
    buckets: tuple[int, ...]  # text lengths the text tower is sent (gateway/contract.py)
    variable_length: bool  # a causal text tower: any length up to the context
    family: str
    tokenizer: TokenizerExport


def export_version(request: ExportRequest, repository: Path, progress: Progress = lambda _: None) -> Path:
    """Export both towers of one version; returns the image model folder. Atomic per version."""
    open_clip = import_open_clip()
    image_name, text_name = model_names(request.version)
    progress(f"{request.version}: loading open_clip model (weights: {request.pretrained})")
    model = load_model(request)
    tokenizer = open_clip.get_tokenizer(open_clip_name(request.version))
    pre = open_clip.get_model_preprocess_cfg(model)
    progress(f"{request.version}: scripting image and text towers")
    towers = _script(request, model, tokenizer, pre)
    progress(f"{request.version}: verifying against eager open_clip")
    ids, lengths = tokenizer(VERIFY_TEXTS), (towers.buckets[0], towers.context)
    verify(model, towers.image, towers.text, towers.size, pre["mean"], pre["std"], ids, lengths, request.fp16)
    record = provenance.describe(request)
    image_spec, text_spec = _specs(request, towers, pre, record)
    if request.target == "gpu":
        _size_for_gpu(request, model, image_spec, text_spec, progress)
    progress(f"{request.version}: writing {image_name} and {text_name}")
    manifest = {
        "clip_version": request.version,
        "provenance": record,
        "image": image_spec.parameters,
        "text": text_spec.parameters,
    }
    _write(repository, [(image_spec, towers.image), (text_spec, towers.text)], manifest, request, towers.tokenizer)
    if request.pretrained == RANDOM_WEIGHTS:
        log.warning("%s exported with RANDOM weights (--pretrained none): embeddings are meaningless.", request.version)
    return repository / image_name


def _script(request: ExportRequest, model, tokenizer, pre: dict) -> _Scripted:  # noqa: ANN001
    """Wrap both towers (uint8 pixels in; the family's text tower) and script them; the tokenizer is checked too."""
    size = int(pre["size"][0] if isinstance(pre["size"], (tuple, list)) else pre["size"])
    if isinstance(pre["size"], (tuple, list)) and pre["size"][0] != pre["size"][1]:
        raise ExportError(f"non-square input size {pre['size']} is not supported.")
    context = int(model.context_length)
    source = copy.deepcopy(model) if request.fp16 else model  # .half() must not touch the fp32 reference
    (text_module, variable_length), family = choose_text_tower(source), family_of(open_clip_name(request.version))
    tok = tokenizer_export(tokenizer, context, Path(import_open_clip().tokenizer.default_bpe()))
    check_tokenizer(tokenizer, tok, TOKENIZER_TEXTS)
    image_tower, text_tower = ImageTower(source, pre["mean"], pre["std"]), text_module
    if request.fp16:
        image_tower, text_tower = image_tower.half(), text_tower.half()
    image_ts = to_torchscript(image_tower, torch.zeros(2, 3, size, size, dtype=torch.uint8))
    text_ts = to_torchscript(text_tower, torch.zeros(2, context, dtype=torch.long))
    with torch.inference_mode():
        embed_dim = int(image_ts(torch.zeros(1, 3, size, size, dtype=torch.uint8)).shape[1])
    buckets = text_buckets(context) if variable_length else (context,)
    return _Scripted(image_ts, text_ts, size, context, embed_dim, buckets, variable_length, family, tok)


def _specs(request: ExportRequest, towers: _Scripted, pre: dict, record: dict[str, str]) -> tuple[TowerSpec, TowerSpec]:
    """Both towers' model configs: parameters, input shapes, warm-up, the CPU thread plan."""
    image_params, text_params = _parameters(request, pre, towers.size, towers.context, towers.embed_dim, record)
    image_params[Param.FAMILY] = text_params[Param.FAMILY] = towers.family
    text_params.update(towers.tokenizer.params)
    text_params[Param.TEXT_BUCKETS] = format_buckets(towers.buckets)
    text_params[Param.TEXT_BUCKETS_EXACT] = str(towers.variable_length).lower()
    plan = {
        t: model_threads(t, request.cpu_threads, request.cpu_plan) if request.target == "cpu" else None
        for t in ("image", "text")
    }  # one plan across every served tower (triton_clip/threads.py)
    image_name, text_name = model_names(request.version)
    size, dim = towers.size, towers.embed_dim
    image_spec = TowerSpec(
        image_name, "image", request.target, [3, size, size], dim, image_params, threads=plan["image"]
    )
    text_spec = TowerSpec(
        text_name,
        "text",
        request.target,
        [-1 if towers.variable_length else towers.context],
        dim,
        text_params,
        warmup_dims=[[b] for b in towers.buckets],
        threads=plan["text"],
    )
    return image_spec, text_spec


def _size_for_gpu(request: ExportRequest, model, image: TowerSpec, text: TowerSpec, progress: Progress) -> None:  # noqa: ANN001
    """Max batch, instances and warm-up batches from the model's size and the GPU memory budget (sizing.py)."""
    plan = sizing.size_gpu(
        sizing.shape_of(model, open_clip_name(request.version)),
        request.fp16,
        request.gpu_memory_gb,
        request.versions_sharing,
    )
    image.sized, image.warmup_batches = plan.image, plan.image_warmup
    text.sized, text.warmup_batches = plan.text, plan.text_warmup
    progress(
        f"{request.version}: sized for {request.gpu_memory_gb:g} GB: image batch {plan.image.max_batch_size}, "
        f"text batch {plan.text.max_batch_size}, {plan.image.instances} instance(s)"
    )


def _parameters(
    request: ExportRequest, pre: dict, size: int, context: int, embed_dim: int, record: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Model-config parameters of both towers: what the gateway needs (gateway/contract.py) + provenance."""
    random_weights = request.pretrained == RANDOM_WEIGHTS
    meta = {
        Param.CLIP_VERSION: request.version,
        Param.OPEN_CLIP_MODEL: open_clip_name(request.version),
        Param.PRETRAINED: "none" if random_weights else Path(request.pretrained).name,
        Param.WEIGHTS_RANDOM: "true" if random_weights else "false",
        "seed": str(request.seed) if random_weights else "",
        Param.PRECISION: record["precision"],
        Param.ACTIVATION: record[Param.ACTIVATION],
        Param.EMBED_DIM: str(embed_dim),
        Param.BUILD_ID: provenance.build_id(record),
        "weights_source": record["weights"],
        "torch_version": record["torch_version"],
        "open_clip_version": record["open_clip_version"],
        "exporter_version": record["exporter_version"],
    }
    image = {
        **meta,
        Param.TOWER: "image",
        Param.IMAGE_SIZE: str(size),
        Param.MEAN: ",".join(map(str, pre["mean"])),
        Param.STD: ",".join(map(str, pre["std"])),
        Param.INTERPOLATION: str(pre["interpolation"]),
        Param.RESIZE_MODE: str(pre["resize_mode"]),
        Param.FILL_COLOR: str(pre.get("fill_color", 0)),
    }
    text = {**meta, Param.TOWER: "text", Param.CONTEXT_LENGTH: str(context)}  # + the tokenizer's own (families.py)
    return image, text  # a CPU tower's thread parameters come from its plan (TowerSpec.threads)


def _write(
    repository: Path, specs: list[tuple[TowerSpec, torch.jit.ScriptModule]], manifest: dict, request: ExportRequest, tok
) -> None:  # noqa: ANN001 - families.TokenizerExport
    """Stage the model folders next to the repository, then move them in: never one tower without the other."""
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=repository.parent))
    try:
        for spec, module in specs:
            scripted = staging / f"{spec.name}.pt"
            module.save(str(scripted))
            write_model(staging / spec.name, spec, scripted)
            scripted.unlink()
            (staging / spec.name / provenance.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        text_name = specs[1][0].name
        for file_name, data in tok.files.items():
            (staging / text_name / file_name).write_bytes(data)
        folders = [spec.name for spec, _ in specs] + write_tokenizer_folder(staging, request, tok)
        image_spec = specs[0][0]  # + the encoded transport's preprocessing model and ensemble (preprocess_model.py)
        if request.with_encoded:
            folders += write_encoded_models(
                staging,
                request.version,
                request.target,
                image_spec.name,
                image_spec.parameters,
                image_spec.embed_dim,
                image_spec.batching,
                model_threads(TOWER_PREPROCESS, request.cpu_threads, request.cpu_plan)
                if request.target == "cpu"
                else None,
            )
        if not request.with_encoded:  # one exported before, now not asked: Triton must not keep serving it
            for name in encoded_model_names(request.version):
                shutil.rmtree(repository / name, ignore_errors=True)
        for name in folders:
            final = repository / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging / name, final)
    except BaseException:
        for name in (
            *model_names(request.version),
            tokenizer_model_name(request.version),
            *encoded_model_names(request.version),
        ):  # all or nothing
            shutil.rmtree(repository / name, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refresh_runner(version: str, repository: Path) -> bool:
    """Keep each CPU model's copied `model.py` in step with this checkout's runner (cheap, no re-export)."""
    changed = False
    for name in model_names(version):
        copy_path = repository / name / "1" / "model.py"
        if copy_path.is_file() and copy_path.read_bytes() != RUNNER.read_bytes():
            shutil.copyfile(RUNNER, copy_path)
            changed = True
    preprocess_dir = repository / encoded_model_names(version)[0] / "1"
    if preprocess_dir.is_dir():  # its runner and the gateway's decode code it ships
        changed = ship_code(preprocess_dir) or changed
    return changed


def is_exported(version: str, repository: Path, target: Target) -> bool:
    """Both towers are there, from this exporter, for `target` (benchmarks reuse them whatever their weights)."""
    record = provenance.recorded(version, repository)
    return record is not None and record.get("target") == target
