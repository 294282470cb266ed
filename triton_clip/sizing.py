"""Per-model GPU sizing: max_batch_size, instance count and warm-up batches that fit a GPU memory budget.

One table for every model (batch 256, 2 instances) does not fit a 16 GB GPU with ViT-L-14-336 or RN50x64,
and `--exit-on-error` then crash-loops Triton. The estimate (docs/deploy.md, "GPU sizing"):

    budget   = gpu_memory_gb * GiB * USABLE_FRACTION - CUDA_RESERVED_GIB * GiB, split evenly across versions
    weights  = (params_image + params_text) * bytes_per_param      (counted once: ENABLE_WEIGHT_SHARING)
    free     = budget - weights;  image gets IMAGE_SHARE of it, text the rest
    per item = ACTIVATION_SAFETY * bytes_per_param * peak live activations of one sample:
               ViT:    10*T*W + 2*H*T^2     (T tokens, W width, H heads: residual + qkv + MLP, attention scores)
               ResNet: 16*W*(S/4)^2         (the widest stage: stem / layer1 at a quarter of the input size)
               text:   the ViT formula with T = context length
    max batch = the largest power of two <= the cap with instances * per item * batch <= the tower's share;
    instances = 2 when the image tower still gets MIN_BATCH_FOR_TWO at 2 instances, else 1.

Activation memory (not weights) is what grows with the batch; the safety factor covers the caching
allocator's rounding, cuDNN/cuBLAS workspaces and the fp32 output. Warm-up runs every power of two up to
the maximum: the dynamic batcher forms batches of any size, and each new size on a GPU picks its kernels
on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from triton_clip.repository import BATCHING, Batching
from triton_clip.towers import ExportError

GIB = 1024**3
DEFAULT_GPU_MEMORY_GB = 16.0  # the smallest common datacenter GPU (T4, V100-16GB)
USABLE_FRACTION = 0.9
CUDA_RESERVED_GIB = 1.5  # CUDA context, libtorch kernels, Triton's pinned pools
ACTIVATION_SAFETY = 2.0
IMAGE_SHARE = 0.8
IMAGE_CAP, TEXT_CAP = 256, 512
MIN_BATCH_FOR_TWO = 64


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from an open_clip model config and its parameter count."""

    image_size: int
    vision: str  # "vit" | "resnet"
    vision_width: int
    patch_size: int
    context_length: int
    text_width: int
    params_image: int
    params_text: int

    @staticmethod
    def from_config(cfg: dict, params_image: int, params_text: int) -> ModelShape:
        vision, text = cfg["vision_cfg"], cfg["text_cfg"]
        size = vision.get("image_size", 224)
        size = int(size[0] if isinstance(size, (list, tuple)) else size)
        resnet = isinstance(vision.get("layers"), (list, tuple))
        return ModelShape(
            size,
            "resnet" if resnet else "vit",
            int(vision.get("width", 768)),
            int(vision.get("patch_size") or 16),
            int(text.get("context_length", 77)),
            int(text.get("width", 512)),
            params_image,
            params_text,
        )


@dataclass(frozen=True)
class Sizing:
    image: Batching
    text: Batching
    image_warmup: list[int]
    text_warmup: list[int]
    budget_bytes: int
    estimate_bytes: int


def _transformer_elems(tokens: int, width: int) -> int:
    heads = max(1, width // 64)
    return 10 * tokens * width + 2 * heads * tokens * tokens


def per_item_bytes(shape: ModelShape, bytes_per_param: int) -> tuple[int, int]:
    """Estimated peak activation bytes of one image and one text sample (safety factor included)."""
    if shape.vision == "resnet":
        image = 16 * shape.vision_width * (shape.image_size // 4) ** 2
    else:
        image = _transformer_elems((shape.image_size // shape.patch_size) ** 2 + 1, shape.vision_width)
    text = _transformer_elems(shape.context_length, shape.text_width)
    scale = ACTIVATION_SAFETY * bytes_per_param
    return int(image * scale), int(text * scale)


def _largest_batch(cap: int, per_item: int, room: float) -> int:
    batch = cap
    while batch >= 1 and per_item * batch > room:
        batch //= 2
    return batch


def ladder(max_batch: int) -> list[int]:
    """1, 2, 4, ... up to max_batch (max_batch itself included)."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return [*out, max_batch]


def size_gpu(
    shape: ModelShape, fp16: bool, gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB, versions_sharing: int = 1
) -> Sizing:
    """Batching for both towers of one version on the gpu target, or an ExportError if it cannot fit."""
    bpp = 2 if fp16 else 4
    budget = (gpu_memory_gb * GIB * USABLE_FRACTION - CUDA_RESERVED_GIB * GIB) / max(1, versions_sharing)
    weights = (shape.params_image + shape.params_text) * bpp
    free = budget - weights
    image_item, text_item = per_item_bytes(shape, bpp)
    for instances in (2, 1):
        image_batch = _largest_batch(IMAGE_CAP, image_item * instances, free * IMAGE_SHARE)
        text_batch = _largest_batch(TEXT_CAP, text_item * instances, free * (1 - IMAGE_SHARE))
        if instances == 1 or image_batch >= MIN_BATCH_FOR_TWO:
            break
    if free <= 0 or image_batch < 1 or text_batch < 1:
        raise ExportError(
            f"the model does not fit {budget / GIB:.1f} GiB of GPU memory per version ({gpu_memory_gb:g} GB GPU, "
            f"{versions_sharing} version(s)): weights alone take {weights / GIB:.1f} GiB. Use --fp16, a larger "
            "--gpu-memory-gb, or fewer versions per GPU."
        )
    base_image, base_text = BATCHING[("gpu", "image")], BATCHING[("gpu", "text")]
    image = Batching(
        image_batch, base_image.queue_delay_us, base_image.max_queue_size, base_image.queue_timeout_us, instances
    )
    text = Batching(
        text_batch, base_text.queue_delay_us, base_text.max_queue_size, base_text.queue_timeout_us, instances
    )
    estimate = weights + instances * (image_item * image_batch + text_item * text_batch)
    return Sizing(image, text, ladder(image_batch), ladder(text_batch), int(budget), int(estimate))


def shape_of(model, open_clip_name: str) -> ModelShape:  # noqa: ANN001 - an open_clip CLIP model
    import open_clip

    cfg = open_clip.get_model_config(open_clip_name) or {}
    params_image = sum(p.numel() for p in model.visual.parameters())
    params_text = sum(p.numel() for p in model.parameters()) - params_image
    if not cfg:
        cfg = {"vision_cfg": {}, "text_cfg": {"context_length": int(model.context_length)}}
    return ModelShape.from_config(cfg, params_image, params_text)
