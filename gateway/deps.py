"""Annotated dependencies: routes get the lifespan-owned objects without touching app state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from gateway.auth import KeyChecker
from gateway.metrics import Metrics
from gateway.service import ClipService
from gateway.settings import Settings


@dataclass
class AppState:
    """Everything the lifespan creates; one instance per worker process."""

    settings: Settings
    service: ClipService
    keys: KeyChecker
    metrics: Metrics


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread pool,
# i.e. two thread hops per request for two attribute reads (measured in docs/benchmarks.md).
async def get_state(request: Request) -> AppState:
    return request.app.state.gateway


State = Annotated[AppState, Depends(get_state)]


@dataclass
class Credentials:
    query_key: str | None
    authorization: str | None

    def check(self, state: AppState, body_key: str | None) -> None:
        state.keys.check(self.query_key, self.authorization, body_key)


async def get_credentials(
    api_key: Annotated[str | None, Query(description="API key (only checked when keys are configured).")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    countinference: Annotated[bool | None, Query(include_in_schema=False)] = None,
    service_secret: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Credentials:
    return Credentials(api_key, authorization)


Creds = Annotated[Credentials, Depends(get_credentials)]
