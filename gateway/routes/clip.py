"""The three Roboflow CLIP routes: parse → auth → service → response. Nothing else lives here."""

from __future__ import annotations

import time

import numpy as np
import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gateway.deps import Creds, State
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

router = APIRouter(prefix="/clip", tags=["clip"])
_ERRORS = {
    400: {"description": "Bad input (image load, limits, text too long)"},
    401: {"description": "Bad key"},
    404: {"description": "Unknown clip_version_id"},
    413: {"description": "Body or text count too large"},
    429: {"description": "Overloaded"},
    503: {"description": "Triton unavailable"},
}


def _respond(started: float, **fields: object) -> Response:
    body = {"inference_id": None, "frame_id": None, "time": time.perf_counter() - started, **fields}
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _rows(embeddings: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(embeddings, dtype=np.float32)


async def image_response(
    body: ImageFields, api_key: str | None, version: str | None, state: State, creds: Creds, route: str = "clip"
) -> Response:
    """The embed_image handler of both route families; only the version field and the route differ."""
    started = time.perf_counter()
    creds.check(state, api_key)
    images = body.image if isinstance(body.image, list) else [body.image]
    embeddings = await state.service.embed_images(images, version, listed=isinstance(body.image, list), route=route)
    return _respond(started, embeddings=_rows(embeddings))


async def text_response(
    body: TextFields, api_key: str | None, version: str | None, state: State, creds: Creds, route: str = "clip"
) -> Response:
    started = time.perf_counter()
    creds.check(state, api_key)
    texts = body.text if isinstance(body.text, list) else [body.text]
    embeddings = await state.service.embed_texts(texts, version, body.truncate, route)
    return _respond(started, embeddings=_rows(embeddings))


async def compare_response(
    body: CompareFields, api_key: str | None, version: str | None, state: State, creds: Creds, route: str = "clip"
) -> Response:
    started = time.perf_counter()
    creds.check(state, api_key)
    similarity = await state.service.compare(
        body.subject, body.subject_type, body.prompt, body.prompt_type, version, body.truncate, route
    )
    return _respond(started, similarity=similarity, parent_id=None)


@router.post("/embed_image", response_model=ClipEmbeddingResponse, summary="CLIP Image Embeddings", responses=_ERRORS)
async def embed_image(body: ClipImageEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await image_response(body, body.api_key, body.clip_version_id, state, creds)


@router.post("/embed_text", response_model=ClipEmbeddingResponse, summary="CLIP Text Embeddings", responses=_ERRORS)
async def embed_text(body: ClipTextEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await text_response(body, body.api_key, body.clip_version_id, state, creds)


@router.post("/compare", response_model=ClipCompareResponse, summary="CLIP Compare", responses=_ERRORS)
async def compare(body: ClipCompareRequest, state: State, creds: Creds) -> Response:
    return await compare_response(body, body.api_key, body.clip_version_id, state, creds)
