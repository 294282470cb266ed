"""A third Triton model per version that serves the text tower's tokenizer file to the gateway.

Design (issue 11): tokenization stays in the gateway, and the tokenizer comes from the same
export as the tower it feeds. A Hugging Face `tokenizer.json` (2-35 MB) is too large for model
config parameters, which the gateway re-reads every few seconds, so the exporter wraps the file
in a TorchScript module that returns its bytes. The same `model.pt` runs under the CPU target's
Python-backend runner and under `pytorch_libtorch` on GPU hosts, so both targets deliver the
file through Triton itself; the gateway fetches it once per (version, sha256) and checks the hash.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from triton_clip.repository import RUNNER, Target, parameters_pbtxt

FILE_INPUT, FILE_OUTPUT = "request__0", "file__0"


def tokenizer_model_name(version: str) -> str:
    return f"clip-{version}-tokenizer"


class FileBlob(nn.Module):
    """forward(uint8 [N, 1]) -> uint8 [N, size]: the file's bytes, once per request row."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.register_buffer("data", torch.frombuffer(bytearray(data), dtype=torch.uint8).clone())

    def forward(self, request: torch.Tensor) -> torch.Tensor:
        return self.data.unsqueeze(0).expand(request.shape[0], -1).contiguous()


def _config(name: str, target: Target, params: dict[str, str]) -> str:
    head = (
        'platform: "pytorch_libtorch"\ndefault_model_filename: "model.pt"\n'
        if target == "gpu"
        else 'backend: "python"\n'
    )
    param_text = parameters_pbtxt(params)
    return (
        f'name: "{name}"\n{head}max_batch_size: 1\n'
        f'input [ {{ name: "{FILE_INPUT}" data_type: TYPE_UINT8 dims: [ 1 ] }} ]\n'
        f'output [ {{ name: "{FILE_OUTPUT}" data_type: TYPE_UINT8 dims: [ -1 ] }} ]\n'
        "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
        f"{param_text}"
    )


def write_tokenizer_model(
    folder: Path, version: str, target: Target, file_name: str, data: bytes, params: dict[str, str]
) -> None:
    """Write `clip-<version>-tokenizer` (the caller stages it with the two towers)."""
    version_dir = folder / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.script(FileBlob(data)).save(str(version_dir / "model.pt"))
    if target == "cpu":
        shutil.copyfile(RUNNER, version_dir / "model.py")
    (folder / file_name).write_bytes(data)
    meta = {
        "clip_version": version,
        "tower": "tokenizer",
        "tokenizer_file": file_name,
        "num_threads": "1",
        **{k: params[k] for k in ("tokenizer", "tokenizer_sha256") if k in params},
    }
    (folder / "config.pbtxt").write_text(_config(folder.name, target, meta))


def write_tokenizer_folder(staging: Path, request, tok) -> list[str]:
    """Stage the tokenizer model when the gateway needs the file from Triton (HF tokenizers); its folder names."""
    if tok.params.get("tokenizer") != "hf":
        return []
    name = tokenizer_model_name(request.version)
    file_name = tok.params["tokenizer_file"]
    write_tokenizer_model(staging / name, request.version, request.target, file_name, tok.files[file_name], tok.params)
    return [name]
