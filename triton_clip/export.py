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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gateway.contract import TOWER_PREPROCESS, Param, encoded_model_names, format_buckets, text_buckets
from triton_clip import provenance, sizing
from triton_clip.families import check_tokenizer, family_of, tokenizer_export
from triton_clip.families import text_tower as choose_text_tower
from triton_clip.preprocess_model import ship_code, write_encoded_models
from triton_clip.repository import RUNNER, Target, TowerSpec, write_model
from triton_clip.threads import DEFAULT_PLAN, default_cores, model_threads
from triton_clip.tokenizer_model import tokenizer_model_name, write_tokenizer_folder
from triton_clip.towers import ExportError, ImageTower, to_torchscript
from triton_clip.versions import RANDOM_WEIGHTS, model_names, open_clip_name

log = logging.getLogger("triton_clip.export")
FP32_TOLERANCE = 1e-4
# Scale-free too: random-init towers (tiny EVA: norm ~0.002) can differ by less than 1e-4 and still point
# elsewhere (an EVA tower without its rotary embeddings: cos 0.993, max diff 1.1e-4).
FP32_MIN_COSINE = 0.99999
FP16_MIN_COSINE = 0.999
# Short texts (every one under 16 tokens) for the scripted-vs-eager check, and hostile ones for the tokenizer.
VERIFY_TEXTS = ["a photo of a dog", "", "A Diagram, of 3 things!"]
TOKENIZER_TEXTS = [*VERIFY_TEXTS, "   ", "Ünïcödé café 日本語 🐶🇫🇷", "&amp; &lt;b&gt; it's", "word " * 100]

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
    quick = provenance.resolve_quick_gelu(request.version, source, request.quick_gelu)
    if source == RANDOM_WEIGHTS:
        torch.manual_seed(request.seed)
        return _checked(open_clip.create_model(name, pretrained=None, quick_gelu=quick).eval(), quick)
    looks_like_path = provenance.is_checkpoint_path(source)
    if looks_like_path and not Path(source).is_file():
        raise ExportError(f"checkpoint file {source!r} does not exist.")
    if not looks_like_path and source not in open_clip.list_pretrained_tags_by_model(name):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise ExportError(f"{name!r} has no pretrained tag {source!r}. Known tags: {tags}.")
    # A tag is built as trained: force_quick_gelu when its config says so, and open_clip's mismatch
    # warning is an error here (never again a GELU model silently serving QuickGELU weights).
    kwargs = {"force_quick_gelu": True} if quick and not looks_like_path else {"quick_gelu": quick}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*QuickGELU mismatch.*")
            model = open_clip.create_model(name, pretrained=source, **kwargs).eval()
    except UserWarning as exc:
        raise ExportError(f"{name!r} with tag {source!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - open_clip raises RuntimeError/OSError/HF errors alike
        raise ExportError(
            f"could not load pretrained weights {source!r} for {name!r} (download failed or the file is "
            f"not a checkpoint: {str(exc)[:300]}). Offline? Either pass a local checkpoint with "
            "--checkpoint PATH (or CLIP_PRETRAINED=/path/to/file), or use --pretrained none for random "
            "weights (smoke tests only)."
        ) from exc
    return _checked(model, quick, provenance.tag_config(request.version, source))


def _checked(model, quick: bool, tag: dict | None = None):  # noqa: ANN001, ANN202
    """The built model really uses the activation (and a tag's preprocessing) it will be recorded with."""
    from open_clip.transformer import QuickGELU

    has_quick = any(isinstance(m, QuickGELU) for m in model.modules())
    if has_quick != quick:
        built = "QuickGELU" if has_quick else "GELU"
        raise ExportError(f"model built with {built}, but {provenance.activation_name(quick)} was asked.")
    if tag:
        pre = _import_open_clip().get_model_preprocess_cfg(model)
        for key in ("mean", "std", "interpolation", "resize_mode"):
            want, got = _plain(tag.get(key)), _plain(pre.get(key))
            if want is not None and got is not None and want != got:
                raise ExportError(f"preprocessing {key}={got!r} differs from the pretrained tag's {want!r}.")
    return model


def _plain(value):  # noqa: ANN001, ANN202 - lists and tuples compare equal
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _check(name: str, got: torch.Tensor, want: torch.Tensor, fp16: bool) -> None:
    if fp16:
        cos = torch.nn.functional.cosine_similarity(got.float(), want.float(), dim=-1).min().item()
        if cos < FP16_MIN_COSINE:
            raise ExportError(f"{name}: fp16 TorchScript diverges from eager fp32 (min cosine {cos:.5f}).")
        return
    diff = (got - want).abs().max().item()
    cos = torch.nn.functional.cosine_similarity(got.float(), want.float(), dim=-1).min().item()
    if diff > FP32_TOLERANCE or cos < FP32_MIN_COSINE:
        raise ExportError(
            f"{name}: TorchScript differs from eager open_clip by {diff:.2e} (limit {FP32_TOLERANCE}), "
            f"min cosine {cos:.7f} (limit {FP32_MIN_COSINE})."
        )


def _verify(model, image_ts, text_ts, size: int, mean, std, ids, lengths, fp16: bool) -> None:  # noqa: ANN001
    """Scripted towers must reproduce eager open_clip (the reference) before anything is written.

    `lengths` are the input lengths the text tower will be sent: a bucket is only recorded once a
    short input has been shown here to give the full-context embedding.
    """
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=gen)
    normalised = (pixels.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        want_image, want_text = model.encode_image(normalised), model.encode_text(ids)
        _check("image tower", image_ts(pixels), want_image, fp16)
        for length in lengths:
            _check(f"text tower (L={length})", text_ts(ids[:, :length]), want_text, fp16)


def export_version(request: ExportRequest, repository: Path, progress: Progress = lambda _: None) -> Path:
    """Export both towers of one version; returns the image model folder. Atomic per version."""
    open_clip = _import_open_clip()
    image_name, text_name = model_names(request.version)
    progress(f"{request.version}: loading open_clip model (weights: {request.pretrained})")
    model = load_model(request)
    tokenizer = open_clip.get_tokenizer(open_clip_name(request.version))
    pre = open_clip.get_model_preprocess_cfg(model)
    size = int(pre["size"][0] if isinstance(pre["size"], (tuple, list)) else pre["size"])
    if isinstance(pre["size"], (tuple, list)) and pre["size"][0] != pre["size"][1]:
        raise ExportError(f"non-square input size {pre['size']} is not supported.")
    context = int(model.context_length)
    embed_dim = (
        int(
            model.text_projection.shape[1]
            if isinstance(model.text_projection, torch.Tensor)
            else model.text_projection.out_features
        )
        if hasattr(model, "text_projection")
        else 0
    )

    progress(f"{request.version}: scripting image and text towers")
    source = copy.deepcopy(model) if request.fp16 else model  # .half() must not touch the fp32 reference
    (text_module, variable_length), family = choose_text_tower(source), family_of(open_clip_name(request.version))
    tok = tokenizer_export(tokenizer, context, Path(open_clip.tokenizer.default_bpe()))
    check_tokenizer(tokenizer, tok, TOKENIZER_TEXTS)
    buckets = text_buckets(context) if variable_length else (context,)
    image_tower, text_tower = ImageTower(source, pre["mean"], pre["std"]), text_module
    if request.fp16:
        image_tower, text_tower = image_tower.half(), text_tower.half()
    image_ts = to_torchscript(image_tower, torch.zeros(2, 3, size, size, dtype=torch.uint8))
    text_ts = to_torchscript(text_tower, torch.zeros(2, context, dtype=torch.long))
    with torch.inference_mode():
        embed_dim = int(image_ts(torch.zeros(1, 3, size, size, dtype=torch.uint8)).shape[1])

    progress(f"{request.version}: verifying against eager open_clip")
    _verify(
        model,
        image_ts,
        text_ts,
        size,
        pre["mean"],
        pre["std"],
        tokenizer(VERIFY_TEXTS),
        (buckets[0], context),
        request.fp16,
    )

    record = provenance.describe(request)
    image_params, text_params = _parameters(request, pre, size, context, embed_dim, record)
    image_params[Param.FAMILY] = text_params[Param.FAMILY] = family
    text_params.update(tok.params)
    text_params[Param.TEXT_BUCKETS] = format_buckets(buckets)
    text_params[Param.TEXT_BUCKETS_EXACT] = str(variable_length).lower()
    plan = {
        t: model_threads(t, request.cpu_threads, request.cpu_plan) if request.target == "cpu" else None
        for t in ("image", "text")
    }  # one plan across every served tower (triton_clip/threads.py)
    image_spec = TowerSpec(
        image_name, "image", request.target, [3, size, size], embed_dim, image_params, threads=plan["image"]
    )
    text_spec = TowerSpec(
        text_name,
        "text",
        request.target,
        [-1 if variable_length else context],
        embed_dim,
        text_params,
        warmup_dims=[[b] for b in buckets],
        threads=plan["text"],
    )
    if request.target == "gpu":
        plan = sizing.size_gpu(
            sizing.shape_of(model, open_clip_name(request.version)),
            request.fp16,
            request.gpu_memory_gb,
            request.versions_sharing,
        )
        image_spec.sized, image_spec.warmup_batches = plan.image, plan.image_warmup
        text_spec.sized, text_spec.warmup_batches = plan.text, plan.text_warmup
        progress(
            f"{request.version}: sized for {request.gpu_memory_gb:g} GB: image batch {plan.image.max_batch_size}, "
            f"text batch {plan.text.max_batch_size}, {plan.image.instances} instance(s)"
        )
    progress(f"{request.version}: writing {image_name} and {text_name}")
    manifest = {"clip_version": request.version, "provenance": record, "image": image_params, "text": text_params}
    _write(repository, [(image_spec, image_ts), (text_spec, text_ts)], manifest, request, tok)
    if request.pretrained == RANDOM_WEIGHTS:
        log.warning("%s exported with RANDOM weights (--pretrained none): embeddings are meaningless.", request.version)
    return repository / image_name


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
