"""Upstream Roboflow request/response models (roboflow/inference `entities/requests/clip.py`).

Unknown fields are ignored, unions parse as upstream's pydantic smart-union does, and
`clip_version_id` may be absent or null (then the server default applies).
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator


class InferenceRequestImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="`base64` (optional data-URI prefix) or `url`; `numpy` and `file` are refused.")
    value: Any | None = Field(None, description="The base64 payload or the https URL.")


class BaseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    id: str | None = None
    api_key: str | None = Field(None, description="Only checked when the gateway is configured with keys.")
    usage_billable: bool = True
    start: float | None = None
    source: str | None = None
    source_info: str | None = None
    disable_model_monitoring: bool | None = False


class ClipInferenceRequest(BaseRequest):
    clip_version_id: str | None = Field(
        None, description="One of the served versions (see /info); absent or null = the server default."
    )
    model_id: str | None = Field(None, description="Ignored, as upstream.")


class ImageFields(BaseModel):
    """The embed_image body of both route families."""

    image: list[InferenceRequestImage] | InferenceRequestImage


class TextFields(BaseModel):
    """The embed_text body of both route families."""

    text: list[str] | str
    truncate: bool = Field(False, description="Extension: truncate texts over the context length like open_clip.")


class ClipImageEmbeddingRequest(ImageFields, ClipInferenceRequest):
    pass


class ClipTextEmbeddingRequest(TextFields, ClipInferenceRequest):
    pass


PromptType = Union[
    list[InferenceRequestImage], InferenceRequestImage, str, list[str], dict[str, InferenceRequestImage | str]
]


class CompareFields(BaseModel):
    """The compare body of both route families (upstream's ClipCompareRequest / PerceptionEncoderCompareRequest)."""

    subject: InferenceRequestImage | str
    subject_type: str = "image"
    prompt: PromptType
    prompt_type: str = "text"
    truncate: bool = Field(False, description="Extension: truncate texts over the context length like open_clip.")

    @field_validator("prompt", mode="before")
    @classmethod
    def _type_and_value_is_one_image(cls, value: Any) -> Any:
        """Upstream's rule: a dict with both `type` and `value` is ONE image, not named prompts.

        The smart union alone would read `{"type": "url", "value": "https://..."}` as dict[str, str].
        """
        if isinstance(value, dict) and "type" in value and "value" in value:
            return InferenceRequestImage.model_validate(value)
        return value


class ClipCompareRequest(ClipInferenceRequest, CompareFields):
    pass


class PerceptionEncoderInferenceRequest(BaseRequest):
    """Upstream `entities/requests/perception_encoder.py`: the same bodies, another version field."""

    perception_encoder_version_id: str | None = Field(
        None, description="A served Perception Encoder version (see /info); absent or null = the server default."
    )
    model_id: str | None = Field(None, description="Ignored; the version comes from perception_encoder_version_id.")


class PerceptionEncoderImageEmbeddingRequest(ImageFields, PerceptionEncoderInferenceRequest):
    pass


class PerceptionEncoderTextEmbeddingRequest(TextFields, PerceptionEncoderInferenceRequest):
    pass


class PerceptionEncoderCompareRequest(PerceptionEncoderInferenceRequest, CompareFields):
    pass


class InferenceResponse(BaseModel):
    inference_id: str | None = None
    frame_id: int | None = None
    time: float | None = Field(None, description="Seconds from request parsed to response built.")


class ClipEmbeddingResponse(InferenceResponse):
    embeddings: list[list[float]]


class ClipCompareResponse(InferenceResponse):
    similarity: list[float] | dict[str, float]
    parent_id: str | None = None
