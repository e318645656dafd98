"""One place that maps the core's error family to HTTP. Bodies are always
``{"detail": ...}``; no stack trace, SQL or connection string reaches a client."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag_core.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    IndexMismatch,
    InvalidInput,
    NotFound,
    RagError,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[RagError], int]] = [
    (InvalidInput, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (IndexMismatch, 409),
    (DependencyUnavailable, 503),
]


def status_of(exc: Exception) -> int:
    """The HTTP status of a domain error (500 for anything unmapped)."""
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


def retry_after(exc: DependencyUnavailable) -> str:
    """Seconds to wait, as the Retry-After header wants them (5 when unknown)."""
    retry = exc.retry_after if exc.retry_after is not None else 5.0
    return str(max(1, math.ceil(retry)))


async def rag_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, DependencyUnavailable):
        headers["Retry-After"] = retry_after(exc)
        log.warning("dependency unavailable: %s (%s)", exc.dependency, exc.reason)
    if status == 500:
        log.error("unmapped domain error %s", type(exc).__name__)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RagError, rag_error)
    app.add_exception_handler(Exception, unexpected_error)
