"""What one served version is, read from its models' configs: the `parameters` the exporter wrote.

Pure (no gRPC): `gateway/triton.py` fetches the configs from Triton and hands them here, so the gateway
learns each version's image size, preprocessing, context length and dims from Triton itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.contract import TOWER_ENCODED, Param
from gateway.images.decode import Preprocess
from gateway.text.registry import text_buckets

log = logging.getLogger("gateway.triton")  # the discovery's logger, as before the split


@dataclass(frozen=True)
class VersionInfo:
    """One served CLIP version: its two Triton models and what preprocessing they expect."""

    version: str
    image_model: str
    text_model: str
    embed_dim: int
    preprocess: Preprocess
    context_length: int
    text_buckets: tuple[int, ...]
    image_max_batch: int
    text_max_batch: int
    open_clip_model: str
    pretrained: str
    weights_random: bool
    precision: str
    tokenizer_sha256: str
    activation: str = "?"
    family: str = "clip"
    tokenizer: str = "clip-bpe"
    text_clean: str = "lower"
    tokenizer_model: str = ""
    encoded_model: str = ""  # the bytes -> embedding ensemble (GATEWAY_IMAGE_TRANSPORT=encoded), if exported

    def public(self) -> dict[str, object]:
        return {
            "clip_version_id": self.version,
            "open_clip_model": self.open_clip_model,
            "family": self.family,
            "pretrained": self.pretrained,
            "weights_random": self.weights_random,
            "precision": self.precision,
            "activation": self.activation,
            "embedding_dim": self.embed_dim,
            "image_size": self.preprocess.size,
            "resize_mode": self.preprocess.resize_mode,
            "interpolation": self.preprocess.interpolation,
            "context_length": self.context_length,
            "text_buckets": list(self.text_buckets),
            "tokenizer": self.tokenizer,
            "tokenizer_sha256": self.tokenizer_sha256,
            "text_clean": self.text_clean,
            "models": [self.image_model, self.text_model] + ([self.tokenizer_model] if self.tokenizer_model else []),
            "encoded_model": self.encoded_model or None,
        }


def _params(config: dict) -> dict[str, str]:
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def versions_from_configs(configs: list[dict]) -> dict[str, VersionInfo]:
    """Pair image and text tower configs by their `clip_version` parameter (pure, for tests)."""
    towers: dict[str, dict[str, dict]] = {}
    for config in configs:
        params = _params(config)
        if params.get(Param.TOWER) in ("image", "text", TOWER_ENCODED) and params.get(Param.CLIP_VERSION):
            towers.setdefault(params[Param.CLIP_VERSION], {})[params[Param.TOWER]] = config
    found: dict[str, VersionInfo] = {}
    for version, pair in towers.items():
        encoded = pair.pop(TOWER_ENCODED, None)
        if set(pair) != {"image", "text"}:
            log.warning("version %s has only its %s tower loaded; not served", version, ", ".join(pair) or "encoded")
            continue
        image, text = _params(pair["image"]), _params(pair["text"])
        found[version] = VersionInfo(
            version=version,
            image_model=pair["image"]["name"],
            text_model=pair["text"]["name"],
            embed_dim=int(image[Param.EMBED_DIM]),
            preprocess=Preprocess(
                size=int(image[Param.IMAGE_SIZE]),
                resize_mode=image.get(Param.RESIZE_MODE, "shortest"),
                interpolation=image.get(Param.INTERPOLATION, "bicubic"),
                fill_color=int(image.get(Param.FILL_COLOR, "0")),
            ),
            context_length=int(text[Param.CONTEXT_LENGTH]),
            text_buckets=text_buckets(text),
            image_max_batch=int(pair["image"].get("max_batch_size", 1)) or 1,
            text_max_batch=int(pair["text"].get("max_batch_size", 1)) or 1,
            open_clip_model=image.get(Param.OPEN_CLIP_MODEL, version),
            pretrained=image.get(Param.PRETRAINED, "?"),
            weights_random=image.get(Param.WEIGHTS_RANDOM) == "true",
            precision=image.get(Param.PRECISION, "fp32"),
            tokenizer_sha256=text.get(Param.TOKENIZER_SHA256, ""),
            activation=image.get(Param.ACTIVATION, "?"),
            family=image.get(Param.FAMILY, "clip"),
            tokenizer=text.get(Param.TOKENIZER, "clip-bpe"),
            text_clean=text.get(Param.TEXT_CLEAN, "lower"),
            tokenizer_model=f"clip-{version}-tokenizer" if text.get(Param.TOKENIZER) == "hf" else "",
            encoded_model=encoded["name"] if encoded else "",
        )
    return found
