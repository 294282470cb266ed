"""Writes one tower as a Triton model folder: `config.pbtxt`, `1/model.pt` (+ `1/model.py` on CPU).

The config is the contract between export and gateway: tensor names, shapes and the
preprocessing/tokenizer facts the gateway needs travel as model-config `parameters`, so a
gateway in another container learns them from Triton itself.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.contract import TENSORS
from triton_clip.threads import ModelThreads

Target = Literal["cpu", "gpu"]
Tower = Literal["image", "text"]
RUNNER = Path(__file__).with_name("runner.py")


@dataclass(frozen=True)
class Batching:
    """Dynamic-batching knobs per target and tower; defaults measured on 2 vCPUs / NVIDIA docs."""

    max_batch_size: int
    queue_delay_us: int
    max_queue_size: int = 256
    queue_timeout_us: int = 30_000_000
    instances: int = 1


BATCHING: dict[tuple[str, str], Batching] = {
    ("cpu", "image"): Batching(max_batch_size=32, queue_delay_us=2_000),
    ("cpu", "text"): Batching(max_batch_size=64, queue_delay_us=1_000),
    ("gpu", "image"): Batching(max_batch_size=256, queue_delay_us=1_000, max_queue_size=4096, instances=2),
    ("gpu", "text"): Batching(max_batch_size=512, queue_delay_us=500, max_queue_size=4096, instances=2),
}


@dataclass
class TowerSpec:
    name: str
    tower: Tower
    target: Target
    input_dims: list[int]
    embed_dim: int
    parameters: dict[str, str] = field(default_factory=dict)
    warmup_dims: list[list[int]] = field(default_factory=list)
    sized: Batching | None = None  # per-model sizing (triton_clip/sizing.py), else the table
    warmup_batches: list[int] = field(default_factory=list)
    threads: ModelThreads | None = None  # the CPU thread plan (triton_clip/threads.py); instances come from it

    @property
    def batching(self) -> Batching:
        return self.sized or BATCHING[(self.target, self.tower)]


def _dims(values: list[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _warmup(spec: TowerSpec, input_name: str, dtype: str) -> str:
    entries = []
    max_batch = spec.batching.max_batch_size
    batches = spec.warmup_batches or [1, min(8, max_batch), max_batch]
    for dims in spec.warmup_dims or [spec.input_dims]:
        for batch in sorted(set(batches)):
            entries.append(
                f'  {{ name: "b{batch}_{"x".join(map(str, dims))}" batch_size: {batch}\n'
                f'    inputs {{ key: "{input_name}" value {{ data_type: {dtype} dims: {_dims(dims)} zero_data: true }} }} }}'
            )
    return "model_warmup [\n" + ",\n".join(entries) + "\n]\n"


def parameters_pbtxt(params: dict[str, str]) -> str:
    """Model-config `parameters` entries: the facts the gateway reads from Triton."""
    return "".join(
        f'parameters {{ key: "{k}" value {{ string_value: {json.dumps(str(v))} }} }}\n'
        for k, v in sorted(params.items())
    )


def config_pbtxt(spec: TowerSpec) -> str:
    input_name, output_name = TENSORS[spec.tower]
    dtype = "TYPE_UINT8" if spec.tower == "image" else "TYPE_INT64"
    b = spec.batching
    if spec.target == "gpu":
        head = 'platform: "pytorch_libtorch"\ndefault_model_filename: "model.pt"\n'
        kind = "KIND_GPU"
        # ENABLE_WEIGHT_SHARING: instances on one GPU share one copy of the weights (sizing counts it once).
        params = {
            "INFERENCE_MODE": "true",
            "ENABLE_JIT_PROFILING": "false",
            "ENABLE_WEIGHT_SHARING": "true",
            **spec.parameters,
        }
    else:
        head = 'backend: "python"\n'
        kind = "KIND_CPU"
        params = {**spec.parameters, **(spec.threads.parameters() if spec.threads else {})}
    instance_group = (
        spec.threads.instance_group(kind)
        if spec.target == "cpu" and spec.threads
        else f"instance_group [ {{ count: {b.instances} kind: {kind} }} ]"
    )
    param_text = parameters_pbtxt(params)
    return (
        f'name: "{spec.name}"\n{head}max_batch_size: {b.max_batch_size}\n'
        f'input [ {{ name: "{input_name}" data_type: {dtype} dims: {_dims(spec.input_dims)} }} ]\n'
        f'output [ {{ name: "{output_name}" data_type: TYPE_FP32 dims: [ {spec.embed_dim} ] }} ]\n'
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {b.queue_delay_us}\n"
        "  default_queue_policy {\n"
        "    timeout_action: REJECT\n"
        f"    default_timeout_microseconds: {b.queue_timeout_us}\n"
        "    allow_timeout_override: true\n"
        f"    max_queue_size: {b.max_queue_size}\n"
        "  }\n}\n"
        f"{instance_group}\n"
        f"{param_text}{_warmup(spec, input_name, dtype)}"
    )


def write_model(folder: Path, spec: TowerSpec, torchscript_file: Path) -> None:
    """Write one model folder (the caller stages it outside the live repository)."""
    version_dir = folder / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(torchscript_file, version_dir / "model.pt")
    if spec.target == "cpu":
        shutil.copyfile(RUNNER, version_dir / "model.py")
    (folder / "config.pbtxt").write_text(config_pbtxt(spec))
