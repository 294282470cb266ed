"""Every generated config.pbtxt parses as Triton's ModelConfig; the gpu target follows libtorch's rules."""

from __future__ import annotations

import re

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_clip.repository import BATCHING, TENSORS, TowerSpec, config_pbtxt
from triton_clip.versions import ROBOFLOW_VERSIONS, model_names, open_clip_name

LIBTORCH_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*__\d+$")  # pytorch_backend README: <name>__<index>


def spec(target: str, tower: str) -> TowerSpec:
    dims = [3, 224, 224] if tower == "image" else [-1]
    warm = [[16], [77]] if tower == "text" else []
    return TowerSpec(
        f"clip-ViT-B-32-{tower}",
        tower,
        target,
        dims,
        512,
        {"clip_version": "ViT-B-32", "tower": tower},
        warmup_dims=warm,
    )


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("target", ["cpu", "gpu"])
@pytest.mark.parametrize("tower", ["image", "text"])
def test_config_parses_as_model_config(target: str, tower: str) -> None:
    config = parse(config_pbtxt(spec(target, tower)))
    batching = BATCHING[(target, tower)]
    assert config.max_batch_size == batching.max_batch_size
    assert config.dynamic_batching.max_queue_delay_microseconds == batching.queue_delay_us
    assert config.dynamic_batching.default_queue_policy.max_queue_size == batching.max_queue_size
    assert config.instance_group[0].count == batching.instances
    assert config.parameters["clip_version"].string_value == "ViT-B-32"
    # model_warmup keeps the model un-READY until it has run at batch 1 and at max batch.
    sizes = {w.batch_size for w in config.model_warmup}
    assert {1, batching.max_batch_size} <= sizes
    (inp,), (out,) = config.input, config.output
    assert (inp.name, out.name) == TENSORS[tower]
    assert out.data_type == model_config_pb2.TYPE_FP32 and list(out.dims) == [512]
    expected = model_config_pb2.TYPE_UINT8 if tower == "image" else model_config_pb2.TYPE_INT64
    assert inp.data_type == expected


@pytest.mark.parametrize("tower", ["image", "text"])
def test_gpu_target_follows_libtorch_backend_rules(tower: str) -> None:
    config = parse(config_pbtxt(spec("gpu", tower)))
    assert config.platform == "pytorch_libtorch" and config.backend == ""
    assert config.default_model_filename == "model.pt"
    assert all(g.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU for g in config.instance_group)
    for tensor in (*config.input, *config.output):
        assert LIBTORCH_NAME.match(tensor.name), tensor.name
    assert config.parameters["INFERENCE_MODE"].string_value == "true"


@pytest.mark.parametrize("tower", ["image", "text"])
def test_cpu_target_is_python_backend_on_cpu(tower: str) -> None:
    config = parse(config_pbtxt(spec("cpu", tower)))
    assert config.backend == "python" and config.platform == ""
    assert all(g.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU for g in config.instance_group)


def test_version_ids_map_to_open_clip_names() -> None:
    assert open_clip_name("ViT-L-14-336px") == "ViT-L-14-336"
    assert open_clip_name("ViT-B-16") == "ViT-B-16"
    assert open_clip_name("convnext_base_w") == "convnext_base_w"  # any open_clip name passes through
    assert len(ROBOFLOW_VERSIONS) == 9
    assert model_names("ViT-B-16") == ("clip-ViT-B-16-image", "clip-ViT-B-16-text")
    with pytest.raises(ValueError):
        model_names("../etc")


def test_refresh_runner_updates_stale_copies(tmp_path) -> None:
    from triton_clip.export import refresh_runner
    from triton_clip.repository import RUNNER

    for name in model_names("ViT-B-32"):
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.py").write_text("# an older runner\n")
    assert refresh_runner("ViT-B-32", tmp_path) is True
    assert all((tmp_path / n / "1" / "model.py").read_bytes() == RUNNER.read_bytes() for n in model_names("ViT-B-32"))
    assert refresh_runner("ViT-B-32", tmp_path) is False
