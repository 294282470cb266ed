"""The three Roboflow CLIP routes: parse → auth → service → response. Nothing else lives here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gateway.deps import AppState, Credentials, Creds, State
from gateway.schemas import (
    ClipCompareRequest,
    ClipCompareResponse,
    ClipEmbeddingResponse,
    ClipImageEmbeddingRequest,
    ClipTextEmbeddingRequest,
    CompareFields,
    ImageFields,
    TextFields,
)
from gateway.service import ClipService

router = APIRouter(prefix="/clip", tags=["clip"])
_ERRORS = {
    400: {"description": "Bad input (image load, limits, text too long)"},
    401: {"description": "Bad key"},
    404: {"description": "Unknown clip_version_id"},
    413: {"description": "Body or text count too large"},
    429: {"description": "Overloaded"},
    503: {"description": "Triton unavailable"},
}


@dataclass(slots=True)
class Call:
    """One handled request: its key, the version it asks for, its route family; timed from its creation."""

    state: AppState
    creds: Credentials
    api_key: str | None
    version: str | None
    route: str = "clip"
    started: float = field(default_factory=time.perf_counter)

    def service(self) -> ClipService:
        """The service, once the key is accepted."""
        self.creds.check(self.state, self.api_key)
        return self.state.service

    def respond(self, **fields: object) -> Response:
        body = {"inference_id": None, "frame_id": None, "time": time.perf_counter() - self.started, **fields}
        return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _rows(embeddings: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(embeddings, dtype=np.float32)


# The handlers of both route families (/clip, /perception_encoder): only the version field and the route differ.
async def image_response(body: ImageFields, call: Call) -> Response:
    service, listed = call.service(), isinstance(body.image, list)
    images = body.image if listed else [body.image]
    embeddings = await service.embed_images(images, call.version, listed=listed, route=call.route)
    return call.respond(embeddings=_rows(embeddings))


async def text_response(body: TextFields, call: Call) -> Response:
    service = call.service()
    texts = body.text if isinstance(body.text, list) else [body.text]
    embeddings = await service.embed_texts(texts, call.version, body.truncate, call.route)
    return call.respond(embeddings=_rows(embeddings))


async def compare_response(body: CompareFields, call: Call) -> Response:
    service = call.service()
    similarity = await service.compare(
        body.subject, body.subject_type, body.prompt, body.prompt_type, call.version, body.truncate, call.route
    )
    return call.respond(similarity=similarity, parent_id=None)


@router.post("/embed_image", response_model=ClipEmbeddingResponse, summary="CLIP Image Embeddings", responses=_ERRORS)
async def embed_image(body: ClipImageEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await image_response(body, Call(state, creds, body.api_key, body.clip_version_id))


@router.post("/embed_text", response_model=ClipEmbeddingResponse, summary="CLIP Text Embeddings", responses=_ERRORS)
async def embed_text(body: ClipTextEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await text_response(body, Call(state, creds, body.api_key, body.clip_version_id))


@router.post("/compare", response_model=ClipCompareResponse, summary="CLIP Compare", responses=_ERRORS)
async def compare(body: ClipCompareRequest, state: State, creds: Creds) -> Response:
    return await compare_response(body, Call(state, creds, body.api_key, body.clip_version_id))
