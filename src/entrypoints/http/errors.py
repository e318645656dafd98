"""One place that maps the core's error family to HTTP. Bodies are always
``{"detail": "<a sentence>"}`` — a string on every status, because the textbook's
site puts ``detail`` straight into its pages (a list crashes React). A 422 carries
its machine-readable reasons beside it, ``errors: [{"loc", "msg", "type"}]``, never
the inputs. No stack trace, SQL or connection string reaches a client."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

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


NOT_CONFIGURED = "no chat model configured"
"""How ``ContentTransformer`` says it has no chat model at all (``chat_model``
dependency): a 503 that waiting cannot fix, so it carries no ``Retry-After``."""


def not_configured(exc: DependencyUnavailable) -> bool:
    """True when the dependency is missing from the configuration, not down."""
    return exc.dependency == "chat_model" and exc.reason.startswith(NOT_CONFIGURED)


async def rag_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, DependencyUnavailable):
        if not_configured(exc):
            log.info("dependency not configured: %s (%s)", exc.dependency, exc.reason)
        else:
            headers["Retry-After"] = retry_after(exc)
            log.warning("dependency unavailable: %s (%s)", exc.dependency, exc.reason)
    if status == 500:
        log.error("unmapped domain error %s", type(exc).__name__)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    if isinstance(exc, InvalidInput):
        # The same shape as the schema's own 422s (and the OpenAPI document's).
        errors = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": str(exc), "errors": errors}, status_code=422)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


MAX_REASONS = 3  # sentences in a 422's detail; every reason stays in ``errors``
_LOCATIONS = ("body", "query", "path", "header", "cookie")


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A 422 whose ``detail`` is one sentence per reason, with FastAPI's reasons
    beside it in ``errors``, without the ``input`` (or ``ctx``) echo: inputs may be
    passwords, or hold lone surrogates that cannot be encoded (which turned a 422
    into a 500)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in error.items() if k in ("loc", "msg", "type")} for error in exc.errors()
    ]
    body = {"detail": validation_detail(errors), "errors": jsonable_encoder(errors)}
    return JSONResponse(body, status_code=422)


def validation_detail(errors: Sequence[dict[str, Any]]) -> str:
    """``"password: String should have at least 8 characters"``; several reasons are
    joined with ``; `` (the first three, then how many more)."""
    sentences = list(dict.fromkeys(_sentence(e) for e in errors)) or ["invalid request"]
    shown = "; ".join(sentences[:MAX_REASONS])
    more = len(sentences) - MAX_REASONS
    return f"{shown} (and {more} more)" if more > 0 else shown


def _sentence(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({msg})"
    msg = msg.removeprefix("Value error, ")
    loc = list(error.get("loc", ()))
    where = loc[0] if loc and loc[0] in _LOCATIONS else None
    field = ".".join(str(part) for part in (loc[1:] if where else loc))
    if not field:
        field = "the request body" if where == "body" else "the request"
    return f"{field}: {msg}"


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RagError, rag_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected_error)
    _declare_validation_body(app)


def _declare_validation_body(app: FastAPI) -> None:
    """The OpenAPI document declares the 422 that is sent: FastAPI adds its own
    ``HTTPValidationError`` (a list ``detail``) to every route with parameters, so
    that component is rewritten once the document is built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_BODY
                schemas["ValidationError"] = VALIDATION_REASON
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


VALIDATION_REASON: dict[str, Any] = {
    "title": "ValidationError",
    "type": "object",
    "properties": {
        "loc": {
            "title": "Location",
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "msg": {"title": "Message", "type": "string"},
        "type": {"title": "Error Type", "type": "string"},
    },
    "required": ["loc", "msg", "type"],
}
VALIDATION_BODY: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "description": "A request the schema or the domain refuses: `detail` is one sentence per "
    "reason (a string, as on every error), `errors` the reasons one by one, never the inputs.",
    "properties": {
        "detail": {
            "title": "Detail",
            "type": "string",
            "examples": ["password: String should have at least 8 characters"],
        },
        "errors": {
            "title": "Errors",
            "type": "array",
            "items": {"$ref": "#/components/schemas/ValidationError"},
        },
    },
    "required": ["detail", "errors"],
}
