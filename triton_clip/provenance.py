"""What a version was built from, so that an export follows every change and only listed versions are served.

Each exported tower records its provenance (weights source, precision, target, activation, library and
exporter versions, GPU sizing inputs) in `clip_version.json` and as config parameters. On every run the
CLI compares it with what is asked and re-exports when anything differs, saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

from gateway.contract import MODEL_PREFIX, SAFE_VERSION_ID, Param, encoded_model_names, model_names
from triton_clip.towers import ExportError
from triton_clip.versions import RANDOM_WEIGHTS, ROBOFLOW_VERSIONS, open_clip_name

log = logging.getLogger("triton_clip.provenance")

# Bump when the exporter changes what it writes into model.pt/config.pbtxt: old exports are then rebuilt.
EXPORTER_VERSION = "2"
MANIFEST = "clip_version.json"
QUICK_GELU_CHOICES = ("auto", "on", "off")


def is_checkpoint_path(source: str) -> bool:
    return os.sep in source or source.endswith((".pt", ".pth", ".bin", ".safetensors"))


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 - size/mtime are the cache key
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def tag_config(version: str, source: str) -> dict:
    """open_clip's pretrained-tag config ({} for a checkpoint file or random weights)."""
    if source == RANDOM_WEIGHTS or is_checkpoint_path(source):
        return {}
    import open_clip

    return dict(open_clip.get_pretrained_cfg(open_clip_name(version), source) or {})


def resolve_quick_gelu(version: str, source: str, choice: str = "auto") -> bool:
    """QuickGELU or GELU: a pretrained tag decides (as trained); else --quick-gelu, `auto` = on for Roboflow ids.

    Roboflow's ids are OpenAI architectures (trained with QuickGELU); other names keep their own config's
    setting (e.g. `ViT-B-32-quickgelu` has it on, `ViT-B-32` off).
    """
    if choice not in QUICK_GELU_CHOICES:
        raise ExportError(f"--quick-gelu must be one of {', '.join(QUICK_GELU_CHOICES)}, not {choice!r}")
    tag = tag_config(version, source)
    if tag:
        trained = bool(tag.get("quick_gelu", False))
        if choice != "auto" and (choice == "on") != trained:
            raise ExportError(
                f"pretrained tag {source!r} of {open_clip_name(version)!r} was trained with "
                f"{'QuickGELU' if trained else 'GELU'}; --quick-gelu {choice} contradicts it (use auto)."
            )
        return trained
    if choice != "auto":
        return choice == "on"
    if version in ROBOFLOW_VERSIONS:
        return True
    import open_clip

    return bool((open_clip.get_model_config(open_clip_name(version)) or {}).get("quick_gelu", False))


def activation_name(quick_gelu: bool) -> str:
    return "quick_gelu" if quick_gelu else "gelu"


def weights_source(source: str, seed: int) -> str:
    if source == RANDOM_WEIGHTS:
        return f"random:seed={seed}"
    if is_checkpoint_path(source):
        path = Path(source)
        if not path.is_file():
            raise ExportError(f"checkpoint file {source!r} does not exist.")
        return f"sha256:{file_sha256(path)}"
    return f"tag:{source}"


def describe(request) -> dict[str, str]:  # noqa: ANN001 - an export.ExportRequest (import cycle otherwise)
    """The provenance an export of `request` would record, computed without loading the model."""
    import open_clip
    import torch

    out = {
        "weights": weights_source(request.pretrained, request.seed),
        "precision": "fp16" if request.fp16 else "fp32",
        "target": request.target,
        Param.ACTIVATION: activation_name(resolve_quick_gelu(request.version, request.pretrained, request.quick_gelu)),
        "open_clip_version": open_clip.__version__,
        "torch_version": torch.__version__,
        "exporter_version": EXPORTER_VERSION,
    }
    if request.target == "gpu":
        out["gpu_memory_gb"] = f"{request.gpu_memory_gb:g}"
        out["versions_per_gpu"] = str(request.versions_sharing)
    return out


def build_id(provenance: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(provenance, sort_keys=True).encode()).hexdigest()[:16]


def recorded(version: str, repository: Path) -> dict[str, str] | None:
    """The provenance both towers of `version` agree on, or None when missing, partial or unreadable."""
    found = []
    for name in model_names(version):
        folder = repository / name
        if not ((folder / "config.pbtxt").is_file() and (folder / "1" / "model.pt").is_file()):
            return None
        try:
            found.append(json.loads((folder / MANIFEST).read_text()).get("provenance"))
        except (OSError, ValueError):
            return None
    return found[0] if found[0] and found[0] == found[1] else None


def stale_reasons(version: str, repository: Path, wanted: dict[str, str]) -> list[str]:
    """Why `version` must be (re-)exported; empty when what is on disk is what is asked."""
    have = recorded(version, repository)
    if have is None:
        exists = any((repository / n).exists() for n in model_names(version))
        return ["exported by an older exporter or incomplete" if exists else "not exported yet"]
    return [f"{key} {have.get(key, 'unset')} -> {value}" for key, value in wanted.items() if have.get(key) != value]


_CLIP_VERSION_PARAM = re.compile(r'parameters \{ key: "clip_version" value \{ string_value: "([^"]+)" \} \}')


def exported_versions(repository: Path) -> dict[str, list[Path]]:
    """Versions this exporter wrote into `repository` (its `clip_version` config parameter), with their folders.

    Folders someone else put there (no such parameter, or a name that is not ours) are never touched.
    """
    out: dict[str, list[Path]] = {}
    if not repository.is_dir():
        return out
    for folder in sorted(repository.glob(f"{MODEL_PREFIX}*")):
        try:
            match = _CLIP_VERSION_PARAM.search((folder / "config.pbtxt").read_text())
        except OSError:
            continue
        version = match.group(1) if match else None
        ours = (
            (*model_names(version), f"{MODEL_PREFIX}{version}-tokenizer", *encoded_model_names(version))
            if version
            else ()
        )
        if version and SAFE_VERSION_ID.match(version) and folder.name in ours:
            out.setdefault(version, []).append(folder)
    return out


def prune(repository: Path, keep: list[str]) -> list[str]:
    """Remove exported versions not in `keep`, so Triton stops serving them (the gateway then answers 404)."""
    removed = []
    for version, folders in exported_versions(repository).items():
        if version in keep:
            continue
        for folder in folders:
            shutil.rmtree(folder)
        removed.append(version)
        log.info("removed %s from %s: no longer in the versions to serve", version, repository)
    return removed
