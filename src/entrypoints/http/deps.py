"""FastAPI dependency aliases that read from the app's container.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop per request that cost /health half its throughput."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from entrypoints.container import Container
from entrypoints.http.bodies import OffLoopJsonRequest
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


def check_admin(container: Container, credentials: HTTPAuthorizationCredentials | None) -> None:
    """The admin key, compared in constant time: 403 when none is configured, 401 when
    it is missing or wrong."""
    if container.admin_key is None:
        raise HTTPException(403, "the admin routes are disabled: set ADMIN_API_KEY")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), container.admin_key.encode()):
        raise HTTPException(401, "admin key required", headers={"WWW-Authenticate": "Bearer"})


async def require_admin(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    check_admin(container, credentials)


class AdminFirstRoute(APIRoute):
    """A route that checks the admin key before its body is read (FastAPI reads a body
    before it solves the dependencies, so ``require_admin`` alone came after a 100 MB
    parse), and parses a large JSON body off the event loop. An answer sent before the
    body is read closes the connection (``bodies.BodyLimitMiddleware``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def admin_first(request: Request) -> Response:
            container: Container | None = getattr(request.app.state, "container", None)
            if container is not None:  # else not started: require_admin will say so
                check_admin(container, await _bearer(request))
            return await handler(OffLoopJsonRequest(request.scope, request.receive))

        return admin_first


AdminDep = Annotated[None, Depends(require_admin)]
