"""Roboflow's Perception Encoder routes: the CLIP routes' shapes, errors and limits, PE versions only."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.deps import Creds, State
from gateway.routes.clip import _ERRORS, Call, compare_response, image_response, text_response
from gateway.schemas import (
    ClipCompareResponse,
    ClipEmbeddingResponse,
    PerceptionEncoderCompareRequest,
    PerceptionEncoderImageEmbeddingRequest,
    PerceptionEncoderTextEmbeddingRequest,
)

ROUTE = "perception_encoder"
router = APIRouter(prefix="/perception_encoder", tags=["perception_encoder"])


@router.post(
    "/embed_image",
    response_model=ClipEmbeddingResponse,
    summary="Perception Encoder Image Embeddings",
    responses=_ERRORS,
)
async def embed_image(body: PerceptionEncoderImageEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await image_response(body, Call(state, creds, body.api_key, body.perception_encoder_version_id, ROUTE))


@router.post(
    "/embed_text", response_model=ClipEmbeddingResponse, summary="Perception Encoder Text Embeddings", responses=_ERRORS
)
async def embed_text(body: PerceptionEncoderTextEmbeddingRequest, state: State, creds: Creds) -> Response:
    return await text_response(body, Call(state, creds, body.api_key, body.perception_encoder_version_id, ROUTE))


@router.post("/compare", response_model=ClipCompareResponse, summary="Perception Encoder Compare", responses=_ERRORS)
async def compare(body: PerceptionEncoderCompareRequest, state: State, creds: Creds) -> Response:
    return await compare_response(body, Call(state, creds, body.api_key, body.perception_encoder_version_id, ROUTE))
