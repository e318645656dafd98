"""`/` and the health routes. None of them waits on a dependency: `/health`
reads the monitor's cached report, `/health/live` does nothing at all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from entrypoints.container import Container
from entrypoints.http import page
from entrypoints.http.deps import ContainerDep
from entrypoints.http.responses import NOT_READY, UNHEALTHY
from rag_core.health import ComponentHealth, Overall

router = APIRouter(tags=["status"])


@router.get(
    "/",
    response_model=dict[str, str],
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The status as JSON; the chat page for a browser "
            "(Accept ranking text/html above application/json).",
        }
    },
)
async def root(request: Request, response: Response) -> dict[str, str] | Response:
    if page.prefers_html(request.headers.get("accept")):
        return page.for_app(request.app).response()
    response.headers["Vary"] = "Accept"
    return {
        "status": "online",
        "service": request.app.title,
        "version": request.app.version,
    }


def _component(c: ComponentHealth) -> dict[str, Any]:
    return {
        "status": c.status.value,
        "critical": c.critical,
        "detail": c.detail,
        "latency_ms": c.latency_ms,
        "error": c.error,
        "checked_at": c.checked_at.isoformat() if c.checked_at else None,
        "circuit_state": c.circuit_state,
    }


@router.get("/health", responses=UNHEALTHY)
async def health(request: Request) -> JSONResponse:
    container: Container = request.app.state.container  # no dependency: the hottest route
    report = container.health.report()
    body = {
        "status": report.status.value,
        "components": {c.name: _component(c) for c in report.components},
        "retrieval": container.retriever.mode,
    }
    if report.status is Overall.UNHEALTHY:
        failing = [c.name for c in report.components if c.critical and c.status.value == "fail"]
        body["detail"] = f"critical component failing: {', '.join(failing)}"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get("/health/circuits")
async def circuits(container: ContainerDep) -> dict[str, dict[str, Any]]:
    """One circuit breaker per outside dependency, as this process sees it."""
    body: dict[str, dict[str, Any]] = {}
    for breaker in container.breakers:
        snap = breaker.snapshot()
        body[snap.name] = {
            "state": snap.state,
            "failure_count": snap.failure_count,
            "failure_threshold": snap.failure_threshold,
            "recovery_timeout": snap.recovery_timeout,
            "seconds_until_trial": snap.seconds_until_trial,
            "last_failure": snap.last_failure,
            "last_failure_at": snap.last_failure_at.isoformat() if snap.last_failure_at else None,
        }
    return body


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready", responses=NOT_READY)
async def ready(request: Request, container: ContainerDep) -> JSONResponse:
    state = request.app.state
    if state.draining:
        return JSONResponse({"status": "draining", "detail": "shutting down"}, status_code=503)
    if not state.started:
        return JSONResponse({"status": "starting", "detail": "starting up"}, status_code=503)
    if container.health.report().status is Overall.UNHEALTHY:
        detail = "a critical dependency is failing: see /health"
        return JSONResponse({"status": "unhealthy", "detail": detail}, status_code=503)
    return JSONResponse({"status": "ready"})
