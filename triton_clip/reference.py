"""The eager open_clip reference of an export: the model built with the asked weights, and the check that
the scripted towers reproduce it before anything is written.

`load_model` refuses a model whose activation or preprocessing differs from what will be recorded for it
(provenance.py); `verify` compares the TorchScript towers with eager open_clip on random pixels and short texts.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from triton_clip import provenance
from triton_clip.towers import ExportError
from triton_clip.versions import RANDOM_WEIGHTS, open_clip_name

if TYPE_CHECKING:
    from triton_clip.export import ExportRequest

FP32_TOLERANCE = 1e-4
# Scale-free too: random-init towers (tiny EVA: norm ~0.002) can differ by less than 1e-4 and still point
# elsewhere (an EVA tower without its rotary embeddings: cos 0.993, max diff 1.1e-4).
FP32_MIN_COSINE = 0.99999
FP16_MIN_COSINE = 0.999
# Short texts (every one under 16 tokens) for the scripted-vs-eager check, and hostile ones for the tokenizer.
VERIFY_TEXTS = ["a photo of a dog", "", "A Diagram, of 3 things!"]
TOKENIZER_TEXTS = [*VERIFY_TEXTS, "   ", "Ünïcödé café 日本語 🐶🇫🇷", "&amp; &lt;b&gt; it's", "word " * 100]


def import_open_clip():  # noqa: ANN202 - keeps `--help` fast and torch warnings quiet
    warnings.filterwarnings("ignore", category=FutureWarning)
    import open_clip

    return open_clip


def load_model(request: ExportRequest):  # noqa: ANN201
    """open_clip model with the requested weights, or an ExportError that says what to do."""
    open_clip = import_open_clip()
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
        pre = import_open_clip().get_model_preprocess_cfg(model)
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


def verify(model, image_ts, text_ts, size: int, mean, std, ids, lengths, fp16: bool) -> None:  # noqa: ANN001
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
