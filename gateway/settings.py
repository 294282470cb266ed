"""The gateway's one settings object. Every knob is an environment variable with a documented default.

Variables are `GATEWAY_*`, except where upstream Roboflow already named the same knob
(`CLIP_VERSION_ID`, `ALLOW_URL_INPUT`, ...): those keep upstream's names so existing
deployments carry over. The README's settings table is generated from this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _upstream(name: str) -> AliasChoices:
    return AliasChoices(f"GATEWAY_{name}", name)


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", env_ignore_empty=True)

    # --- where Triton is -------------------------------------------------------------------
    triton_url: str = Field(
        "127.0.0.1:8001",
        description="Triton gRPC endpoint(s): `host:port`, a comma list of them, or `dns:///name:port` "
        "(every address of the name); requests are spread round-robin over all of them.",
    )
    triton_timeout_s: float = Field(30.0, gt=0, description="Deadline of one Triton inference call.")
    model_refresh_s: float = Field(
        10.0, gt=0, description="How often the served versions are re-read from Triton's repository."
    )

    # --- versions ----------------------------------------------------------------------------
    clip_version_id: str = Field(
        "ViT-B-16", validation_alias=_upstream("CLIP_VERSION_ID"), description="Default `clip_version_id`."
    )
    perception_encoder_version_id: str = Field(
        "PE-Core-L14-336",
        validation_alias=_upstream("PERCEPTION_ENCODER_VERSION_ID"),
        description="Default `perception_encoder_version_id` of the /perception_encoder routes.",
    )

    # --- request limits ----------------------------------------------------------------------
    max_images_per_request: int = Field(
        8,
        ge=1,
        validation_alias=_upstream("CLIP_MAX_BATCH_SIZE"),
        description="Images per embed_image request (and image prompts per compare); 400 past it.",
    )
    max_prompts_per_compare: int = Field(8, ge=1, description="Prompts per compare request; 400 past it.")
    max_texts_per_request: int = Field(1024, ge=1, description="Texts per embed_text request; 413 past it.")
    max_text_chars: int = Field(4096, ge=1, description="Characters per text before tokenizing; 400 past it.")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Request body size; 413 past it.")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Decoded pixels per image (decompression bombs); 400 past it."
    )
    min_image_side: int = Field(2, ge=1, description="Smallest accepted image side in pixels.")

    # --- URL images (upstream flag names) ----------------------------------------------------
    allow_url_input: bool = Field(
        True, validation_alias=_upstream("ALLOW_URL_INPUT"), description='Accept `{"type": "url"}` images at all.'
    )
    allow_non_https_url_input: bool = Field(
        False, validation_alias=_upstream("ALLOW_NON_HTTPS_URL_INPUT"), description="Also fetch plain http:// URLs."
    )
    allow_url_input_without_fqdn: bool = Field(
        False,
        validation_alias=_upstream("ALLOW_URL_INPUT_WITHOUT_FQDN"),
        description="Also fetch IP literals and single-label hosts.",
    )
    allow_url_to_non_global_addresses: bool = Field(
        False,
        validation_alias=_upstream("ALLOW_URL_TO_NON_GLOBAL_ADDRESSES"),
        description="Off by default (upstream: on): loopback, private, link-local... are refused.",
    )
    url_allowlist: CsvList = Field(
        default_factory=list,
        validation_alias=_upstream("WHITELISTED_DESTINATIONS_FOR_URL_INPUT"),
        description="Comma-separated hosts; when set, only these are fetched.",
    )
    url_denylist: CsvList = Field(
        default_factory=list,
        validation_alias=_upstream("BLACKLISTED_DESTINATIONS_FOR_URL_INPUT"),
        description="Comma-separated hosts that are never fetched.",
    )
    url_connect_timeout_s: float = Field(3.0, gt=0, description="Connect timeout for URL images.")
    url_total_timeout_s: float = Field(10.0, gt=0, description="Whole-download deadline for URL images.")
    url_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Byte cap of one URL image, enforced while streaming."
    )
    url_max_redirects: int = Field(3, ge=0, description="Redirect hops followed (each re-checked).")

    # --- work scheduling ---------------------------------------------------------------------
    max_inflight: int = Field(64, ge=1, description="Requests processed at once; 429 + Retry-After past it.")
    cpu_workers: int = Field(2, ge=1, description="Threads for decode/resize/tokenize (off the event loop).")
    text_cache_size: int = Field(4096, ge=0, description="Text embeddings kept in the LRU cache (0 = off).")
    jpeg_draft: bool = Field(
        False,
        description="Let libjpeg downscale huge JPEGs while decoding (faster, not bit-exact; `tensor` transport).",
    )
    image_transport: Literal["tensor", "encoded"] = Field(
        "tensor",
        description="`tensor`: the gateway decodes and resizes, Triton gets uint8 pixels. `encoded`: the gateway "
        "checks the header only (format, pixels, bombs) and sends the file's bytes to the version's `bytes -> "
        "preprocessing -> image tower` ensemble (docs/encoded-transport.md); a version exported without one stays "
        "on `tensor` (logged, and `image_transport` in /info).",
    )

    # --- processes ----------------------------------------------------------------------------
    workers: int = Field(
        1,
        ge=0,
        le=64,
        description="Gateway worker processes on one port (`python -m gateway.serve`); 0 = one per CPU core of the "
        "container (the image's default; the chart sets it). In-flight limit, text cache and discovery are per worker.",
    )
    metrics_dir: Path | None = Field(
        None,
        description="Directory for multi-worker Prometheus files (emptied at start); default: a temp dir.",
    )

    # --- auth --------------------------------------------------------------------------------
    api_keys: CsvList = Field(
        default_factory=list, description="Comma-separated accepted API keys; empty = no auth (upstream behaviour)."
    )
    api_keys_file: Path | None = Field(None, description="File with one accepted API key per line (a mounted Secret).")

    # --- logging -----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Python log level.")
    log_json: bool = Field(True, description="One JSON object per log line.")

    @field_validator("url_allowlist", "url_denylist", "api_keys", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def accepted_keys(self) -> list[SecretStr]:
        """Keys from the env list and the key file; re-read on each call is avoided by the caller."""
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            keys += [line.strip() for line in self.api_keys_file.read_text().splitlines() if line.strip()]
        return [SecretStr(k) for k in keys]
