"""Roboflow's Perception Encoder routes: the CLIP routes' shapes, errors and limits, PE versions only."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.deps import Creds, State
from gateway.routes.clip import _ERRORS, _respond, _rows
from gateway.schemas import (
    ClipCompareResponse,
    ClipEmbeddingResponse,
    PerceptionEncoderCompareRequest,
    PerceptionEncoderImageEmbeddingRequest,
    PerceptionEncoderTextEmbeddingRequest,
)

ROUTE = "perception_encoder"
router = APIRouter(prefix="/perception_encoder", tags=["perception_encoder"])


@router.post("/embed_image", response_model=ClipEmbeddingResponse, summary="Perception Encoder Image Embeddings",
             responses=_ERRORS)
async def embed_image(body: PerceptionEncoderImageEmbeddingRequest, state: State, creds: Creds) -> Response:
    started = time.perf_counter()
    creds.check(state, body.api_key)
    images = body.image if isinstance(body.image, list) else [body.image]
    embeddings = await state.service.embed_images(images, body.perception_encoder_version_id,
                                                  listed=isinstance(body.image, list), route=ROUTE)
    return _respond(started, embeddings=_rows(embeddings))


@router.post("/embed_text", response_model=ClipEmbeddingResponse, summary="Perception Encoder Text Embeddings",
             responses=_ERRORS)
async def embed_text(body: PerceptionEncoderTextEmbeddingRequest, state: State, creds: Creds) -> Response:
    started = time.perf_counter()
    creds.check(state, body.api_key)
    texts = body.text if isinstance(body.text, list) else [body.text]
    embeddings = await state.service.embed_texts(texts, body.perception_encoder_version_id, body.truncate, ROUTE)
    return _respond(started, embeddings=_rows(embeddings))


@router.post("/compare", response_model=ClipCompareResponse, summary="Perception Encoder Compare", responses=_ERRORS)
async def compare(body: PerceptionEncoderCompareRequest, state: State, creds: Creds) -> Response:
    started = time.perf_counter()
    creds.check(state, body.api_key)
    similarity = await state.service.compare(body.subject, body.subject_type, body.prompt, body.prompt_type,
                                             body.perception_encoder_version_id, body.truncate, ROUTE)
    return _respond(started, similarity=similarity, parent_id=None)
