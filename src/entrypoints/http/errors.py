"""One place that maps the core's error family to HTTP. Bodies are always
``{"detail": ...}``; no stack trace, SQL or connection string reaches a client."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rag_core.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    IndexMismatch,
    InvalidInput,
    NotFound,
    RagError,
    Unauthenticated,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[RagError], int]] = [
    (Unauthenticated, 401),
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
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, DependencyUnavailable):
        headers["Retry-After"] = retry_after(exc)
        log.warning("dependency unavailable: %s (%s)", exc.dependency, exc.reason)
    if status == 500:
        log.error("unmapped domain error %s", type(exc).__name__)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    if isinstance(exc, InvalidInput):
        # The same shape as FastAPI's own 422s (and the OpenAPI document's).
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without the ``input`` echo: inputs may be passwords, or hold
    lone surrogates that cannot be encoded (which turned a 422 into a 500)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {k: v for k, v in error.items() if k not in ("input", "ctx")} for error in exc.errors()
    ]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RagError, rag_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected_error)
