"""What differs between open_clip families, read from the model and tokenizer themselves.

The exporter asks this module three things: which text tower runs the model exactly (length
buckets only for causal towers, where the export then proves a short input equals the full
one), which tokenizer the gateway must replay (CLIP BPE or a Hugging Face `tokenizer.json`), and
which family name to report. Facts come from the objects open_clip builds, never from the model
name alone, so a new config of a known family needs no change here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from triton_clip.text_towers import FullContextTextTower
from triton_clip.towers import ExportError, TextTower

CLEAN_MODES = {"_clean_lower": "lower", "_clean_whitespace": "whitespace", "_clean_canonicalize": "canonicalize"}
HF_TOKENIZER_FILE = "tokenizer.json"
# Ordered: the first pattern that matches the open_clip name names the family (shown in /info).
_FAMILIES = (
    ("siglip2", r"siglip2"),
    ("siglip", r"siglip"),
    ("pe-core", r"^pe-core"),
    ("mobileclip2", r"^mobileclip2"),
    ("mobileclip", r"^mobileclip"),
    ("eva", r"^eva"),
    ("coca", r"coca"),
)


def family_of(open_clip_name: str) -> str:
    lowered = open_clip_name.lower()
    return next((family for family, pattern in _FAMILIES if re.search(pattern, lowered)), "clip")


def _text_source(model: nn.Module) -> nn.Module:
    return model if hasattr(model, "token_embedding") else getattr(model, "text", model)


def is_causal(model: nn.Module) -> bool:
    return getattr(_text_source(model), "attn_mask", None) is not None


def text_tower(model: nn.Module) -> tuple[nn.Module, bool]:
    """(tower, takes variable lengths). Causal end-token towers slice; every other one runs at full context."""
    if is_causal(model):
        return TextTower(model), True
    return FullContextTextTower(model), False


@dataclass
class TokenizerExport:
    """Model-config parameters describing the tokenizer, and files to put next to the text tower."""

    params: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clean_mode(tokenizer: object) -> str:
    name = getattr(getattr(tokenizer, "clean_fn", None), "__name__", "_clean_lower")
    if name not in CLEAN_MODES:
        modes = ", ".join(CLEAN_MODES.values())
        raise ExportError(f"text cleaning {name!r} is not supported by the gateway ({modes}).")
    return CLEAN_MODES[name]


def _clip_bpe(tokenizer: object, vocab: Path) -> TokenizerExport:
    if getattr(tokenizer, "reduction_fn", None) is not None:
        raise ExportError("CLIP BPE with a reduction mask (random/shuffle token reduction) is not served.")
    if len(getattr(tokenizer, "all_special_ids", ())) != 2:
        raise ExportError("CLIP BPE with additional special tokens is not served (the gateway knows sot/eot only).")
    data = vocab.read_bytes()
    return TokenizerExport(
        {
            "tokenizer": "clip-bpe",
            "tokenizer_sha256": _sha256(data),
            "text_clean": _clean_mode(tokenizer),
            "sot_id": str(tokenizer.sot_token_id),
            "eot_id": str(tokenizer.eot_token_id),
        },
        {vocab.name: data},
    )


def _hf(tokenizer: object, context: int) -> TokenizerExport:
    """The exact `tokenizers.Tokenizer` transformers runs, with open_clip's padding and truncation baked in."""
    if getattr(tokenizer, "tokenizer_mode", "") or getattr(tokenizer, "strip_sep_token", False):
        raise ExportError("HF tokenizer modes 'clips' and strip_sep_token are not served by the gateway.")
    hf = tokenizer.tokenizer
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None or hf.pad_token_id is None:
        raise ExportError(f"{type(hf).__name__} is not a fast tokenizer with a pad token; the gateway needs one.")
    from tokenizers import Tokenizer

    replay = Tokenizer.from_str(backend.to_str())  # a copy: open_clip's tokenizer stays as it was
    replay.enable_truncation(max_length=context, direction=getattr(hf, "truncation_side", "right"))
    replay.enable_padding(
        direction=hf.padding_side, pad_id=int(hf.pad_token_id), pad_token=str(hf.pad_token), length=context
    )
    data = replay.to_str().encode("utf-8")
    return TokenizerExport(
        {
            "tokenizer": "hf",
            "tokenizer_sha256": _sha256(data),
            "text_clean": _clean_mode(tokenizer),
            "tokenizer_file": HF_TOKENIZER_FILE,
            "pad_id": str(hf.pad_token_id),
        },
        {HF_TOKENIZER_FILE: data},
    )


def tokenizer_export(tokenizer: object, context: int, clip_vocab: Path) -> TokenizerExport:
    kind = type(tokenizer).__name__
    if kind == "SimpleTokenizer":
        return _clip_bpe(tokenizer, clip_vocab)
    if kind in ("HFTokenizer", "SigLipTokenizer"):
        return _hf(tokenizer, context)
    raise ExportError(f"tokenizer {kind} is not supported by the gateway (CLIP BPE and HF fast tokenizers are).")


def check_tokenizer(tokenizer: object, export: TokenizerExport, texts: list[str]) -> None:
    """The file the gateway will load must give open_clip's ids, or the export fails (HF only)."""
    if export.params["tokenizer"] != "hf":
        return
    from tokenizers import Tokenizer

    replay = Tokenizer.from_str(export.files[HF_TOKENIZER_FILE].decode("utf-8"))
    got = [e.ids for e in replay.encode_batch([tokenizer.clean_fn(t) for t in texts])]
    want = tokenizer(texts).tolist()
    if got != want:
        bad = next(t for t, g, w in zip(texts, got, want) if g != w)
        raise ExportError(f"the exported tokenizer.json does not reproduce open_clip's ids (first: {bad!r}).")
