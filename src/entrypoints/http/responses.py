"""The error answers, as the OpenAPI document declares them: one body model and one
``responses=`` entry per status and cause, merged with ``|`` where a router or
route declares what it can really answer.

Every error body is ``{"detail": "<text>"}`` (:class:`ErrorBody`), as
:mod:`entrypoints.http.errors` and the ``HTTPException`` s of the dependencies send
it. A 422 has a string ``detail`` too, with its reasons beside it in ``errors``;
FastAPI declares it by itself on every route that takes parameters or a body, as
``HTTPValidationError``, a component ``errors.py`` rewrites to the body it sends
(a domain ``InvalidInput`` gets that shape too). Unexpected 500s are not declared.

Every route that takes a body can answer 413 (``bodies.BodyLimitMiddleware`` bounds
them all): :func:`declare_body_limit` adds :data:`TOO_LARGE` to each such operation
once the document is built, so a new route is declared as soon as it takes a body.

A 401 carries ``WWW-Authenticate``; a 429 and a dependency's 503 carry
``Retry-After`` (whole seconds; for a 503, 5 when the dependency gave no hint), but
not the 503 of a chat model that is not configured at all.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]
"""What FastAPI's ``responses=`` takes."""


class ErrorBody(BaseModel):
    """Every error but a 422: a human-readable reason, never a stack trace."""

    detail: str = Field(examples=["sign in required"])


_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": '`Bearer`, or `Bearer error="invalid_token"` for a token that '
        "was sent but does not work.",
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}


def _error(status: int, description: str, headers: dict[str, Any] | None = None) -> Responses:
    response: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        response["headers"] = headers
    return {status: response}


BAD_BODY = _error(
    400,
    "The body cannot be read as JSON text (e.g. it is not UTF-8): FastAPI's "
    '`{"detail": "There was an error parsing the body"}`. Malformed JSON is a 422.',
)
SIGN_IN_REQUIRED = _error(
    401,
    "No bearer token, or one that is invalid, expired or revoked.",
    _WWW_AUTHENTICATE,
)
INVALID_TOKEN = _error(
    401,
    "A bearer token was sent but is invalid, expired or revoked (no token: anonymous).",
    _WWW_AUTHENTICATE,
)
BAD_CREDENTIALS = _error(
    401, "Unknown email or wrong password (one message for both).", _WWW_AUTHENTICATE
)
ADMIN_KEY_REQUIRED = _error(401, "The admin key is missing or wrong.", _WWW_AUTHENTICATE)
ADMIN_DISABLED = _error(
    403, "The admin routes (ingest, insights) are disabled: the server has no ADMIN_API_KEY."
)
ANOTHER_USERS_SESSION = _error(403, "The chat session belongs to another user.")
UNKNOWN_SESSION = _error(404, "No chat session with this id.")
UNKNOWN_ANSWER = _error(404, "No answer with this id is logged, or the question log is off.")
EMAIL_TAKEN = _error(409, "An account with this email already exists (case-insensitively).")
INDEX_MISMATCH = _error(
    409,
    "The vector index was built with another layout (embedding dimension or model) "
    "than the one configured: a re-index is needed.",
)
TOO_MANY_REQUESTS = _error(
    429, "Too many requests: retry after `Retry-After` seconds.", _RETRY_AFTER
)
UNAVAILABLE = _error(
    503,
    "A dependency (database, vector index or chat model) is down, timed out or its "
    "circuit is open: retry after `Retry-After` seconds.",
    _RETRY_AFTER,
)
MODEL_UNAVAILABLE = _error(
    503,
    "No chat model is configured (no `Retry-After`: waiting will not help; `detail` "
    "names the setting), or it is down, timed out or its circuit is open: retry after "
    "`Retry-After` seconds.",
    {
        "Retry-After": {
            "description": "Seconds to wait before retrying; absent when no chat model is "
            "configured.",
            "schema": {"type": "integer"},
        }
    },
)
UNHEALTHY = _error(
    503,
    "A critical component is failing: the same report as the 200, with `detail` "
    "naming the failing components (no `Retry-After`).",
)
NOT_READY = _error(
    503,
    "Not ready: `status` is `starting`, `draining` or `unhealthy`, `detail` says why "
    "(no `Retry-After`).",
)

TOO_LARGE = _error(
    413,
    "The body is larger than this route's bound (`MAX_BODY_BYTES`; for `/ingest`, "
    "`MAX_INGEST_BODY_BYTES`): refused before it is read, from `Content-Length` or as a "
    "chunked body streams in, and the connection is closed.",
)

SESSION_OWNER = ANOTHER_USERS_SESSION | UNKNOWN_SESSION
"""A route that reads or writes a chat session by id (403 another user's, 404 unknown)."""

ASKING = BAD_BODY | INVALID_TOKEN | SESSION_OWNER | TOO_MANY_REQUESTS | UNAVAILABLE
"""``POST /chat`` and ``/chat/stream``: an unreadable body; a bad token; a signed-in reader's ``session_id``
that is unknown or another user's; the chat limit; the index (without
``selected_text``) or, signed in, the database down."""


def declare_body_limit(document: dict[str, Any]) -> None:
    """Declare :data:`TOO_LARGE` on every operation of ``document`` that takes a body."""
    status, response = next(iter(TOO_LARGE.items()))
    declared = {
        "description": response["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(str(status), declared)
