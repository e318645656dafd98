"""The two hot calls, posted through the SDK's HTTP client and read as plain JSON.

The SDK's typed resources build a pydantic model for every response and every
streamed chunk, and its default float embeddings go through that one number at
a time: measured against the fake server, a 1536-float query embedding cost
7.7 ms of CPU through ``embeddings.create(encoding_format="float")`` and 1.3 ms
posted here with base64; a chat completion 2.2 ms against 1.4 ms; a stream 4.3
against 1.6 ms (bench/README.md, P2 and P5). The calls go straight through the
HTTP client (connection pool, timeouts) the SDK was given, with the headers the SDK
sends, worked out once per client (``_Route``: the SDK's per-call request building
was a third of a call's CPU, P13); what they fail with is still the SDK's: its
status-error classes, made by the client itself, which ``adapters.openai.errors``
translates, APITimeoutError and APIConnectionError.

A stream is the raw response, its ``data:`` lines read here (``EventStream``): the
SDK's ``AsyncStream`` cost ~39 us of CPU per token (bench/README.md, P12). It
behaves as the SDK's does: an event is dispatched at its blank line, several
``data:`` lines join with newlines, comments and other fields are skipped, ``[DONE]``
ends the stream (the rest of the body is drained briefly, so the connection is
reused), an event whose object carries ``error`` raises ``openai.APIError``, and
transport errors mid-stream become APITimeoutError / APIConnectionError.

A body of an unexpected shape raises DependencyUnavailable("openai", ...): the
server is not speaking the protocol, which no retry cures.
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import json
import ssl
import sys
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx2
import openai

from adapters.openai.errors import DEPENDENCY
from rag_core.errors import DependencyUnavailable
from rag_core.ports import Usage

JSON = dict[str, Any]
_AUTHENTICATED: openai.RequestOptions = {"security": {"bearer_auth": True}}


async def post_json(client: openai.AsyncOpenAI, path: str, body: JSON) -> JSON:
    """POST ``body`` to ``path`` (relative to the client's base URL); the JSON object
    answered. Errors are the SDK's (APIStatusError, APIConnectionError, ...)."""
    route = _route(client)
    if route is None:
        answer = await client.post(path, cast_to=JSON, body=body, options=_AUTHENTICATED)
    else:
        response = await route.send(client, path, body, stream=False)
        try:
            answer = json.loads(response.content)
        except ValueError as exc:
            raise malformed(f"{path} answered something that is not JSON") from exc
    if not isinstance(answer, dict):
        raise malformed(f"{path} answered {type(answer).__name__}, not an object")
    return answer


async def open_stream(client: openai.AsyncOpenAI, path: str, body: JSON) -> EventStream:
    """POST ``body`` with ``stream: true``; the stream of its decoded ``data:`` objects.
    A refused request raises the SDK's status error, as ``post_json``. The caller
    closes the stream (``await stream.close()``)."""
    body = {**body, "stream": True}
    route = _route(client)
    if route is not None:
        return EventStream(await route.send(client, path, body, stream=True))
    response = await client.post(
        path, cast_to=httpx2.Response, body=body, options=_AUTHENTICATED, stream=True
    )
    return EventStream(response)


class _Route:
    """How one client's hot calls are sent: straight through the HTTP client (and
    connection pool) the SDK sends with, with the headers it would send, worked out
    once. The SDK's per-call machinery (options models, header merging, its retry
    loop, an idempotency key per call) cost about half of each call's CPU
    (bench/README.md, P13); what a call can fail with stays the SDK's: its status
    error classes (made by the client itself), APITimeoutError, APIConnectionError."""

    def __init__(self, http: httpx2.AsyncClient, base: str, headers: dict[str, str]) -> None:
        self.http, self.base, self.headers = http, base, headers

    async def send(
        self, client: openai.AsyncOpenAI, path: str, body: JSON, *, stream: bool
    ) -> httpx2.Response:
        request = self.http.build_request(
            "POST",
            self.base + path,
            content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            headers=self.headers,
            timeout=client.timeout,
        )
        try:
            response = await self.http.send(request, stream=stream)
        except _TIMEOUTS as exc:
            raise openai.APITimeoutError(request=request) from exc
        except _TRANSPORT_ERRORS as exc:
            raise openai.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            if stream:
                await response.aread()
            raise client._make_status_error_from_response(response) from None
        return response


_ROUTES: weakref.WeakKeyDictionary[openai.AsyncOpenAI, _Route | None] = weakref.WeakKeyDictionary()


def _route(client: openai.AsyncOpenAI) -> _Route | None:
    """The direct route of a client authenticated by an API key (as
    ``build_openai_client`` makes them); None for anything else, which goes through
    ``client.post``."""
    try:
        return _ROUTES[client]
    except KeyError:
        pass
    route = None
    http = getattr(client, "_client", None)  # the HTTP client the SDK was given
    auth = client.auth_headers
    if isinstance(http, httpx2.AsyncClient) and "Authorization" in auth and not client.custom_auth:
        headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
        headers.update(auth)
        headers["x-stainless-retry-count"] = "0"
        if isinstance(client.timeout, httpx2.Timeout) and client.timeout.read is not None:
            headers["x-stainless-read-timeout"] = str(client.timeout.read)
        route = _Route(http, str(client.base_url).rstrip("/"), headers)
    _ROUTES[client] = route
    return route


# What the SDK's stream turns into APITimeoutError and APIConnectionError mid-body.
_TIMEOUTS = (httpx2.TimeoutException,)
_TRANSPORT_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)
_DRAIN_SECONDS = 0.1  # the SDK's bound on reading the body's rest after [DONE]


class EventStream:
    """The JSON objects of a Server-Sent Events response, one per event.

    An async iterator of the events' decoded data; it ends once ``data: [DONE]``
    came or the body ended. Errors: ``openai.APIError`` for an event that reports one (its ``error``
    member), APITimeoutError / APIConnectionError when the transport fails while
    reading, DependencyUnavailable ("malformed answer") for data that is not JSON
    text. Whatever happens, the caller closes the stream.
    """

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self._chunks: AsyncGenerator[bytes, None] = response.aiter_bytes()
        self._decoder = DataDecoder()
        self._ready: deque[str] = deque()
        self._done = False

    @property
    def response(self) -> httpx2.Response:
        return self._response

    def __aiter__(self) -> EventStream:
        return self

    @property
    def ready(self) -> bool:
        """Whether the next ``__anext__`` returns an event already read (no I/O)."""
        return bool(self._ready) and not self._ready[0].startswith("[DONE]")

    async def __anext__(self) -> object:
        """The next event's decoded data."""
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            chunk = await self._read()
            if chunk is None:
                self._done = True
                raise StopAsyncIteration
            self._ready.extend(self._decoder.feed(chunk))
        data = self._ready.popleft()
        if data.startswith("[DONE]"):
            self._done = True
            self._ready.clear()
            await self._drain()
            raise StopAsyncIteration
        try:
            item: object = json.loads(data)
        except ValueError as exc:
            raise malformed("a streamed event is not JSON") from exc
        if isinstance(item, dict) and item.get("error"):
            error = item["error"]
            message = error.get("message") if isinstance(error, dict) else None
            if not message or not isinstance(message, str):
                message = "An error occurred during streaming"
            raise openai.APIError(message, request=self._response.request, body=error)
        return item

    async def close(self) -> None:
        """Close the response: a stream left unfinished drops its connection, so the
        server sees the client go."""
        try:
            await self._chunks.aclose()
        finally:
            await self._response.aclose()

    async def _read(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None
        except _TIMEOUTS as exc:
            raise openai.APITimeoutError(request=self._response.request) from exc
        except _TRANSPORT_ERRORS as exc:
            raise openai.APIConnectionError(request=self._response.request) from exc

    async def _drain(self) -> None:
        """Read what follows ``[DONE]`` (the end of the chunked body) for a short
        while, so that an HTTP/1.1 connection goes back to the pool; then close."""
        try:
            if self._response.http_version == "HTTP/1.1":
                async with asyncio.timeout(_DRAIN_SECONDS):
                    while await self._read() is not None:
                        pass
        except (TimeoutError, openai.APIConnectionError):
            pass  # cleanup never turns a complete answer into an error
        await self._response.aclose()


class DataDecoder:
    """Splits a Server-Sent Events byte stream into the data of its events.

    Lines end with CR, LF or CRLF (also split across chunks); an event ends at a
    blank line and its ``data:`` lines (one space after the colon dropped) join with
    newlines; comments (``:``), other fields and events without data are skipped,
    as is an event the stream ends before its blank line. Data is UTF-8.
    """

    def __init__(self) -> None:
        self._partial = b""  # the line the last chunk ended inside
        self._data: list[bytes] = []  # the data lines of the event being read
        self._after_cr = False  # the last chunk ended with CR: a leading LF is its pair

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event that ``chunk`` completes, in order."""
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._after_cr = False
        lines = chunk.split(b"\n")
        if self._partial:
            lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(_text(b"\n".join(data)))
                    data.clear()
            elif line.startswith(b"data"):
                name, _, value = line.partition(b":")
                if name == b"data":
                    data.append(value[1:] if value[:1] == b" " else value)
        return events


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise malformed("a streamed event is not UTF-8") from exc


def vector_of(item: object) -> tuple[float, ...]:
    """The vector of one ``data`` item of an embeddings answer: base64 of
    little-endian float32 (asked for) or a list of numbers (servers that ignore
    ``encoding_format``)."""
    embedding = item.get("embedding") if isinstance(item, dict) else None
    if isinstance(embedding, str):
        values = array.array("f")
        try:
            values.frombytes(base64.b64decode(embedding, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise malformed("an embedding is not base64 of float32 values") from exc
        if sys.byteorder == "big":
            values.byteswap()
        return tuple(values)
    if isinstance(embedding, list) and all(isinstance(x, int | float) for x in embedding):
        return tuple(float(x) for x in embedding)
    raise malformed("an embedding is neither base64 nor a list of numbers")


def index_of(item: object) -> int:
    index = item.get("index") if isinstance(item, dict) else None
    if not isinstance(index, int):
        raise malformed("an embedding has no index")
    return index


def first_text(answer: JSON, key: str) -> str:
    """The text of choice 0 of a completion (``key="message"``) or of a streamed
    chunk (``key="delta"``); "" when there is none."""
    choices = answer.get("choices")
    if choices is None:
        return ""
    if not isinstance(choices, list):
        raise malformed("'choices' is not a list")
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            part = choice.get(key)
            content = part.get("content") if isinstance(part, dict) else None
            if content is None:
                return ""
            if not isinstance(content, str):
                raise malformed("a choice's content is not text")
            return content
    return ""


def usage_of(answer: JSON) -> Usage | None:
    """The usage an answer reports, or None when it reports none."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
    )


def malformed(detail: str) -> DependencyUnavailable:
    return DependencyUnavailable(DEPENDENCY, f"malformed answer: {detail}")
