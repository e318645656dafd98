"""FastAPI dependency aliases that read from the app's container.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop per request that cost /health half its throughput."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from entrypoints.container import Container
from entrypoints.http.metrics import Metrics


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]

_bearer = HTTPBearer(auto_error=False)


async def require_admin(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The admin key, compared in constant time."""
    if container.admin_key is None:
        raise HTTPException(403, "ingest over HTTP is disabled: set ADMIN_API_KEY")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), container.admin_key.encode()):
        raise HTTPException(401, "admin key required", headers={"WWW-Authenticate": "Bearer"})


AdminDep = Annotated[None, Depends(require_admin)]
