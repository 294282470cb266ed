"""Exported CPU-target configs -> the same Python-backend models on CUDA, sized by triton_clip/sizing.py.

The nvidia-pytriton tritonserver has only the Python backend (no libtorch), so the GPU bench exports for the `cpu`
target and then changes what differs on a GPU: the runner's `device` parameter (triton_clip/runner.py loads the
TorchScript there and moves each batch to it), the preprocessing model's `decode_device` (nvJPEG), and the
batching, instances and warm-up ladder that `sizing.size_gpu` gives the `gpu` target for this GPU's memory. The
towers keep `KIND_CPU` (the runner, not Triton, puts torch on the GPU; the Python backend hands them CPU inputs);
the preprocessing model gets `KIND_GPU`, as the `gpu` target exports it, because its output tensor is on the GPU.
Configs are parsed and written with Triton's own ModelConfig protobuf (tritonclient's `model_config_pb2`), not
edited as text; tensor names, tower kinds and parameter keys come from gateway/contract.py.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from gateway.contract import TOWER_ENCODED, TOWER_PREPROCESS, Param
from triton_clip.repository import Batching
from triton_clip.sizing import Sizing

RUNNER_DEVICE = "device"  # triton_clip/runner.py: params.get("device", "cpu")


def load(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def dump(cfg: mc.ModelConfig) -> str:
    """One line per top-level entry (as the exporter writes them), so the repository's readers still work."""
    lines = []
    for fd, value in cfg.ListFields():
        is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
        if is_map:
            parts = [(fd.name, key) for key in sorted(value)]
        elif fd.is_repeated:
            parts = [(fd.name, i) for i in range(len(value))]
        else:
            parts = [(fd.name, None)]
        for name, index in parts:
            one = mc.ModelConfig()
            one.CopyFrom(cfg)
            for other, _ in cfg.ListFields():
                if other.name != name:
                    one.ClearField(other.name)
            if index is not None:
                _keep_one(one, name, index, is_map)
            lines.append(text_format.MessageToString(one, as_one_line=True))
    return "\n".join(lines) + "\n"


def _keep_one(cfg: mc.ModelConfig, name: str, index, is_map: bool) -> None:  # noqa: ANN001 - key or position
    field = getattr(cfg, name)
    if is_map:
        for key in [k for k in field if k != index]:
            del field[key]
        return
    item = type(field[index])()
    item.CopyFrom(field[index])
    del field[:]
    field.add().CopyFrom(item)


def _batching(cfg: mc.ModelConfig, b: Batching) -> None:
    cfg.max_batch_size = b.max_batch_size
    cfg.dynamic_batching.max_queue_delay_microseconds = b.queue_delay_us
    cfg.dynamic_batching.default_queue_policy.max_queue_size = b.max_queue_size
    cfg.dynamic_batching.default_queue_policy.default_timeout_microseconds = b.queue_timeout_us


def _warmup(cfg: mc.ModelConfig, ladder: list[int]) -> None:
    """Every batch size of the ladder for each input shape the export warmed up (text: one per bucket)."""
    shapes = {}
    for entry in cfg.model_warmup:
        for key, tensor in entry.inputs.items():
            shapes.setdefault(tuple(tensor.dims), (key, tensor))
    del cfg.model_warmup[:]
    for dims, (key, tensor) in shapes.items():
        for batch in ladder:
            entry = cfg.model_warmup.add(name=f"b{batch}_{'x'.join(map(str, dims))}", batch_size=batch)
            entry.inputs[key].CopyFrom(tensor)


def patch_config(cfg: mc.ModelConfig, sizing: Sizing, device: str) -> bool:
    """Change one parsed config in place for `device`; False for a model it does not concern."""
    tower = cfg.parameters[Param.TOWER].string_value if Param.TOWER in cfg.parameters else ""
    if tower in ("image", "text"):
        b, ladder = (sizing.image, sizing.image_warmup) if tower == "image" else (sizing.text, sizing.text_warmup)
        _batching(cfg, b)
        cfg.instance_group[0].count = b.instances  # KIND_CPU stays: the runner, not Triton, puts torch on CUDA
        cfg.parameters[RUNNER_DEVICE].string_value = device
        _warmup(cfg, ladder)
    elif tower == TOWER_PREPROCESS:  # one instance: nvJPEG decodes a whole batch in one call
        _batching(cfg, sizing.image)
        cfg.parameters[Param.DECODE_DEVICE].string_value = device
        if device == "cuda":  # as the gpu target exports it: its output tensor lives on the GPU
            cfg.instance_group[0].kind = mc.ModelInstanceGroup.KIND_GPU
    elif tower == TOWER_ENCODED:
        cfg.max_batch_size = sizing.image.max_batch_size
    else:
        return False
    return True


def patch_repository(repository: Path, sizing: Sizing, device: str = "cuda") -> list[str]:
    """Patch every model of `repository` this concerns; the names of the models changed."""
    changed = []
    for path in sorted(repository.glob("*/config.pbtxt")):
        cfg = load(path)
        if patch_config(cfg, sizing, device):
            path.write_text(dump(cfg))
            changed.append(path.parent.name)
    return changed
