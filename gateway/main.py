"""create_app(settings): builds the FastAPI app; its lifespan owns (and closes) every client.

The URL fetcher and the Triton client can be injected (tests: fakes that record calls).

Run: `python -m gateway.serve --host 127.0.0.1 --port 9001` (GATEWAY_WORKERS processes).
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
from gateway.fastpath import ClipFastPath
from gateway.images.fetch import ImageFetcher, UrlPolicy
from gateway.metrics import Metrics, forget_dead_workers, worker_stopped
from gateway.middleware import GatewayMiddleware, RouteSet
from gateway.routes import clip, ops, perception_encoder
from gateway.service import ClipService
from gateway.settings import Settings
from gateway.text.registry import TokenizerRegistry
from gateway.triton import TritonClient

log = logging.getLogger("gateway")
ROUTERS = (clip.router, perception_encoder.router, ops.router)  # the routes are declared there, once


def url_policy(s: Settings) -> UrlPolicy:
    return UrlPolicy(
        allow_url_input=s.allow_url_input,
        allow_non_https=s.allow_non_https_url_input,
        allow_without_fqdn=s.allow_url_input_without_fqdn,
        allow_non_global=s.allow_url_to_non_global_addresses,
        allowlist=tuple(s.url_allowlist),
        denylist=tuple(s.url_denylist),
        connect_timeout_s=s.url_connect_timeout_s,
        total_timeout_s=s.url_total_timeout_s,
        max_bytes=s.url_max_bytes,
        max_redirects=s.url_max_redirects,
    )


async def _refresh_forever(service: ClipService, every_s: float) -> None:
    """Follow Triton: pick up versions loaded later, survive its restarts, never crash the app."""
    while True:
        try:
            forget_dead_workers()
            await service.triton.follow_replicas()
            await service.refresh_versions()
        except Exception as exc:  # noqa: BLE001 - keep polling whatever Triton does
            log.warning("cannot read served versions from Triton (%s); retrying in %.0fs", type(exc).__name__, every_s)
        await asyncio.sleep(every_s)


FIRST_DISCOVERY_S = 3.0  # how long a starting worker waits for its first read of Triton's versions


def route_set(app: FastAPI) -> RouteSet:
    """Every path the app serves (its own docs routes and the routers'); the /clip/ router's do inference."""
    own = {path for r in app.routes if isinstance(path := getattr(r, "path", None), str)}
    routed = {r.path for router in ROUTERS for r in router.routes}
    return RouteSet(known=frozenset(own | routed), limited=frozenset(r.path for r in clip.router.routes))


def create_app(
    settings: Settings | None = None, fetcher: ImageFetcher | None = None, triton: TritonClient | None = None
) -> FastAPI:
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.log_json)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        triton_client = triton or TritonClient(settings.triton_url, settings.triton_timeout_s)
        url_fetcher = fetcher or ImageFetcher(url_policy(settings))
        service = ClipService(settings, triton_client, url_fetcher, TokenizerRegistry(), metrics)
        keys = KeyChecker([k.get_secret_value() for k in settings.accepted_keys()])
        app.state.gateway = AppState(settings, service, keys, metrics)
        # Learn the served versions before accepting requests: a worker that uvicorn restarts next to a
        # live one must not answer 503 "no version loaded" for its first refresh interval. Bounded, so a
        # gateway started while Triton is down still comes up (503 + Retry-After until Triton is back).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service.refresh_versions(), timeout=FIRST_DISCOVERY_S)
        refresher = asyncio.create_task(_refresh_forever(service, settings.model_refresh_s))
        log.info("gateway started: triton=%s default version=%s", settings.triton_url, settings.clip_version_id)
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await url_fetcher.aclose()
            await triton_client.close()
            service.close()
            worker_stopped()

    app = FastAPI(
        title="CLIP embeddings on Triton",
        description="Roboflow Inference Server compatible CLIP API (embed_image, embed_text, compare).",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(ClipFastPath)  # inside GatewayMiddleware: ids, logs, metrics and limits still apply
    app.add_middleware(
        GatewayMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_inflight=settings.max_inflight,
        routes=route_set(app),
    )
    return app
