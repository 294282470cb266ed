"""Per version, two more Triton models for the encoded image transport (issue 13 part 2).

* `clip-<v>-preprocess` (Python backend, both targets): file bytes (UINT8 [1, n], ragged-batched) -> uint8
  [3, S, S], with the image tower's own preprocessing (size, resize mode, interpolation, fill) from its export.
  Its folder holds `triton_clip/preprocess_runner.py` as `model.py` and a byte copy of the gateway's decode code
  (SHIPPED), so the ensemble decodes exactly as the gateway would; `refresh_encoded` keeps both in step with this
  checkout, and adds the two models to versions exported before them.
* `clip-<v>-image-encoded` (ensemble): `bytes -> preprocess -> clip-<v>-image`. Its config carries `clip_version`
  and `tower: image_encoded` (gateway/contract.py), which is how the gateway learns that the version has one.

No warm-up for the preprocessing model (zero bytes are not an image); the tower it feeds is warmed up as before.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gateway.contract as contract
from gateway.contract import ENCODED_INPUT, IMAGE_INPUT, IMAGE_OUTPUT, TOWER_ENCODED, TOWER_PREPROCESS, Param
from triton_clip.repository import Batching, Target, parameters_pbtxt
from triton_clip.threads import ModelThreads

PREPROCESS_RUNNER = Path(__file__).with_name("preprocess_runner.py")
GATEWAY_ROOT = Path(contract.__file__).resolve().parent
SHIPPED = ("__init__.py", "contract.py", "errors.py", "images/__init__.py", "images/decode.py")
MAX_IMAGE_PIXELS = "178956970"  # Pillow's own bomb limit; the gateway's (GATEWAY_MAX_IMAGE_PIXELS) is checked first
_FROM_TOWER = (
    Param.CLIP_VERSION,
    Param.IMAGE_SIZE,
    Param.RESIZE_MODE,
    Param.INTERPOLATION,
    Param.FILL_COLOR,
    Param.MEAN,
    Param.STD,
    Param.BUILD_ID,
    Param.WEIGHTS_RANDOM,
)


def preprocess_config(
    name: str, target: Target, image_params: dict[str, str], size: int, batching: Batching, threads: ModelThreads | None
) -> str:
    params = {k: image_params[k] for k in _FROM_TOWER if k in image_params}
    params.update(
        {
            Param.TOWER: TOWER_PREPROCESS,
            Param.MAX_IMAGE_PIXELS: MAX_IMAGE_PIXELS,
            Param.DECODE_DEVICE: "cuda" if target == "gpu" else "cpu",
        }
    )
    if target == "cpu" and threads is not None:
        params.update(threads.parameters())
        instances = threads.instance_group("KIND_CPU")
    else:  # one GPU instance: nvJPEG decodes the whole batch in one call
        params["num_threads"] = "1"
        instances = f"instance_group [ {{ count: 1 kind: {'KIND_GPU' if target == 'gpu' else 'KIND_CPU'} }} ]"
    return (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: {batching.max_batch_size}\n'
        f'input [ {{ name: "{ENCODED_INPUT}" data_type: TYPE_UINT8 dims: [ -1 ] allow_ragged_batch: true }} ]\n'
        f'output [ {{ name: "{IMAGE_INPUT}" data_type: TYPE_UINT8 dims: [ 3, {size}, {size} ] }} ]\n'
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {batching.queue_delay_us}\n"
        "  default_queue_policy {\n"
        "    timeout_action: REJECT\n"
        f"    default_timeout_microseconds: {batching.queue_timeout_us}\n"
        "    allow_timeout_override: true\n"
        f"    max_queue_size: {batching.max_queue_size}\n"
        "  }\n}\n"
        f"{instances}\n"
        f"{parameters_pbtxt(params)}"
    )


def ensemble_config(
    name: str, preprocess: str, image_model: str, embed_dim: int, max_batch: int, image_params: dict[str, str]
) -> str:
    params = {k: image_params[k] for k in (Param.CLIP_VERSION, Param.BUILD_ID) if k in image_params}
    params[Param.TOWER] = TOWER_ENCODED
    return (
        f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: {max_batch}\n'
        f'input [ {{ name: "{ENCODED_INPUT}" data_type: TYPE_UINT8 dims: [ -1 ] }} ]\n'
        f'output [ {{ name: "{IMAGE_OUTPUT}" data_type: TYPE_FP32 dims: [ {embed_dim} ] }} ]\n'
        "ensemble_scheduling {\n  step [\n"
        f'    {{ model_name: "{preprocess}" model_version: -1\n'
        f'      input_map {{ key: "{ENCODED_INPUT}" value: "{ENCODED_INPUT}" }}\n'
        f'      output_map {{ key: "{IMAGE_INPUT}" value: "pixels" }} }},\n'
        f'    {{ model_name: "{image_model}" model_version: -1\n'
        f'      input_map {{ key: "{IMAGE_INPUT}" value: "pixels" }}\n'
        f'      output_map {{ key: "{IMAGE_OUTPUT}" value: "{IMAGE_OUTPUT}" }} }}\n'
        "  ]\n}\n"
        f"{parameters_pbtxt(params)}"
    )


def ship_code(version_dir: Path) -> bool:
    """Put the runner and the gateway's decode code into a preprocessing model folder; True if anything changed."""
    changed = False
    for source, dest in [
        (PREPROCESS_RUNNER, version_dir / "model.py"),
        *((GATEWAY_ROOT / rel, version_dir / "gateway" / rel) for rel in SHIPPED),
    ]:
        if dest.is_file() and dest.read_bytes() == source.read_bytes():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        changed = True
    return changed


def write_encoded_models(
    staging: Path,
    version: str,
    target: Target,
    image_model: str,
    image_params: dict[str, str],
    embed_dim: int,
    batching: Batching,
    threads: ModelThreads | None,
) -> list[str]:
    """Stage `clip-<v>-preprocess` and `clip-<v>-image-encoded` next to the towers; their folder names."""
    preprocess, ensemble = contract.encoded_model_names(version)
    size = int(image_params[Param.IMAGE_SIZE])
    version_dir = staging / preprocess / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    ship_code(version_dir)
    (staging / preprocess / "config.pbtxt").write_text(
        preprocess_config(preprocess, target, image_params, size, batching, threads)
    )
    (staging / ensemble / "1").mkdir(parents=True, exist_ok=True)  # an ensemble needs a version folder, empty
    (staging / ensemble / "config.pbtxt").write_text(
        ensemble_config(ensemble, preprocess, image_model, embed_dim, batching.max_batch_size, image_params)
    )
    return [preprocess, ensemble]


def refresh_encoded(version: str, repository: Path, manifest_name: str, threads: ModelThreads | None) -> bool:
    """Keep the shipped code in step with this checkout; add both models to a version exported before them.

    Needs no weights: everything comes from the image tower's manifest and config. True if anything changed.
    """
    image_model, _ = contract.model_names(version)
    preprocess, ensemble = contract.encoded_model_names(version)
    if (repository / preprocess / "config.pbtxt").is_file() and (repository / ensemble / "config.pbtxt").is_file():
        return ship_code(repository / preprocess / "1")
    try:
        manifest = json.loads((repository / image_model / manifest_name).read_text())
        config = (repository / image_model / "config.pbtxt").read_text()
    except (OSError, ValueError):
        return False
    params, target = manifest["image"], manifest.get("provenance", {}).get("target", "cpu")
    batch = int(re.search(r"^max_batch_size: (\d+)$", config, re.M).group(1))
    queue = re.search(r"max_queue_delay_microseconds: (\d+)", config)
    batching = Batching(batch, int(queue.group(1)) if queue else 2_000)
    staging = repository / f".encoded-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        names = write_encoded_models(
            staging,
            version,
            target,
            image_model,
            params,
            int(params[Param.EMBED_DIM]),
            batching,
            threads if target == "cpu" else None,
        )
        for name in names:  # the preprocessing model first: the ensemble refers to it
            shutil.rmtree(repository / name, ignore_errors=True)
            (staging / name).rename(repository / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True
