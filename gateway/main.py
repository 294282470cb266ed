"""create_app(settings): builds the FastAPI app; its lifespan owns every client.

Run: `uvicorn gateway.main:create_app --factory --host 127.0.0.1 --port 9001`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from gateway import logs
from gateway.auth import KeyChecker
from gateway.deps import AppState
from gateway.errors import install_error_handlers
from gateway.images.fetch import ImageFetcher, UrlPolicy
from gateway.metrics import Metrics
from gateway.middleware import GatewayMiddleware
from gateway.routes import clip, ops, perception_encoder
from gateway.service import ClipService
from gateway.settings import Settings
from gateway.text.registry import TokenizerRegistry
from gateway.triton import TritonClient

log = logging.getLogger("gateway")


def url_policy(s: Settings) -> UrlPolicy:
    return UrlPolicy(
        allow_url_input=s.allow_url_input, allow_non_https=s.allow_non_https_url_input,
        allow_without_fqdn=s.allow_url_input_without_fqdn, allow_non_global=s.allow_url_to_non_global_addresses,
        allowlist=tuple(s.url_allowlist), denylist=tuple(s.url_denylist),
        connect_timeout_s=s.url_connect_timeout_s, total_timeout_s=s.url_total_timeout_s,
        max_bytes=s.url_max_bytes, max_redirects=s.url_max_redirects,
    )


async def _refresh_forever(service: ClipService, every_s: float) -> None:
    """Follow Triton: pick up versions loaded later, survive its restarts, never crash the app."""
    while True:
        try:
            await service.refresh_versions()
        except Exception as exc:  # noqa: BLE001 - keep polling whatever Triton does
            log.warning("cannot read served versions from Triton (%s); retrying in %.0fs", type(exc).__name__, every_s)
        await asyncio.sleep(every_s)


def create_app(settings: Settings | None = None, fetcher: ImageFetcher | None = None) -> FastAPI:
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.log_json)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        triton = TritonClient(settings.triton_url, settings.triton_timeout_s)
        url_fetcher = fetcher or ImageFetcher(url_policy(settings))
        service = ClipService(settings, triton, url_fetcher, TokenizerRegistry(), metrics)
        app.state.gateway = AppState(settings, service, KeyChecker([k.get_secret_value() for k in settings.accepted_keys()]),
                                     metrics)
        refresher = asyncio.create_task(_refresh_forever(service, settings.model_refresh_s))
        log.info("gateway started: triton=%s default version=%s", settings.triton_url, settings.clip_version_id)
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await url_fetcher.aclose()
            await triton.close()
            service.close()

    app = FastAPI(
        title="CLIP embeddings on Triton",
        description="Roboflow Inference Server compatible CLIP API (embed_image, embed_text, compare).",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(clip.router)
    app.include_router(perception_encoder.router)
    app.include_router(ops.router)
    app.add_middleware(GatewayMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                       max_inflight=settings.max_inflight)
    return app
