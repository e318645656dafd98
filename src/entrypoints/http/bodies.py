"""Request bodies: bounded per route before they are read, and large JSON parsed off
the event loop (issue 14, item 3).

:class:`BodyLimitMiddleware` refuses a body over its route's bound with 413
``{"detail": ...}``: at once from ``Content-Length``, and by counting as a chunked
body streams in (FastAPI then answers the 413 it raises). Any answer sent before the
body was read to its end closes the connection, so nothing more of it is taken in.

:class:`OffLoopJsonRequest` parses a JSON body larger than :data:`OFF_LOOP_JSON_BYTES`
on a worker thread. Only ``POST /ingest`` admits such bodies by default (its route
class uses it, see ``deps.AdminFirstRoute``); every other route's bound
(``MAX_BODY_BYTES``, 2 MiB) parses in milliseconds.

The time a body may take to arrive is the server's (``entrypoints.server``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OFF_LOOP_JSON_BYTES = 256 * 1024
"""A JSON body larger than this is parsed on a worker thread (40 MB took 1.6 s)."""

CLOSE = (b"connection", b"close")


class BodyTooLarge(HTTPException):
    """A 413 whose answer closes the connection (the rest of the body is not read)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Pure ASGI: ``limits`` maps a path to its bound, ``default`` is every other's.
    ``hints`` add a sentence to a path's 413 (e.g. which setting raises it)."""

    def __init__(
        self,
        app: ASGIApp,
        default: int,
        limits: Mapping[str, int],
        hints: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits)
        self.hints = dict(hints or {})

    def detail(self, path: str, limit: int) -> str:
        hint = self.hints.get(path)
        text = f"the request body is larger than {limit} bytes, the most {path} takes"
        return f"{text}; {hint}" if hint else text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limits.get(path, self.default)
        headers = Headers(scope=scope)
        length = _content_length(headers)
        if length is not None and length > limit:
            await _answer(BodyTooLarge(self.detail(path, limit)), scope, receive, send)
            return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        received = 0
        complete = not chunked and not length  # nothing (more) to read
        started = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self.detail(path, limit))
                complete = complete or not message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    names = {name.lower() for name, _ in message.get("headers", [])}
                    if b"connection" not in names:
                        message["headers"] = [*message.get("headers", []), CLOSE]
            await send(message)

        try:
            await self.app(scope, bounded_receive, closing_send)
        except BodyTooLarge as exc:  # raised where no exception handler answers it
            if started:
                raise
            await _answer(exc, scope, receive, send)


async def _answer(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    await response(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _parse(body: bytes) -> Any:
    return json.loads(body)


class OffLoopJsonRequest(Request):
    """A request whose large JSON body is parsed on a worker thread, not the loop."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) > OFF_LOOP_JSON_BYTES:
                self._json = await asyncio.to_thread(_parse, body)
            else:
                self._json = _parse(body)
        return self._json
