"""Operational routes: liveness, readiness (Triton and every served model), info, metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.deps import State
from gateway.errors import json_response
from gateway.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Response:
    return json_response(200, {"status": "ok"})


@router.get("/readiness", summary="Triton is ready and every served model is ready")
async def readiness(state: State) -> Response:
    ready = await state.service.ready()
    body = {"ready": ready, "versions": [v.version for v in state.service.served()]}
    return json_response(200 if ready else 503, body, None if ready else {"Retry-After": "2"})


@router.get("/info", summary="Served versions, their weights and the effective limits")
async def info(state: State) -> Response:
    s = state.settings
    versions = [{**v.public(), "image_transport": state.service.image_transport(v)} for v in state.service.served()]
    return json_response(
        200,
        {
            "default_clip_version_id": s.clip_version_id,
            "versions": versions,
            "random_weights": any(v["weights_random"] for v in versions),
            "auth_required": state.keys.enabled,
            "settings": s.model_dump(mode="json", exclude={"api_keys", "api_keys_file"}),
        },
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    return Response(exposition(state.metrics), media_type=CONTENT_TYPE_LATEST)
