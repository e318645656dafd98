"""The two hot calls, posted through the SDK's client but read as plain JSON.

The SDK's typed resources build a pydantic model for every response and every
streamed chunk, and its default float embeddings go through that one number at
a time: measured against the fake server, a 1536-float query embedding cost
7.7 ms of CPU through ``embeddings.create(encoding_format="float")`` and 1.3 ms
posted here with base64; a chat completion 2.2 ms against 1.4 ms; a stream 4.3
against 1.6 ms (bench/README.md, P2 and P5). ``client.post`` keeps what the SDK
is for: the connection pool, timeouts, authentication, the status-error classes
that ``adapters.openai.errors`` translates, and its Server-Sent Events decoder
(error events raise, ``[DONE]`` ends the stream, transport errors mid-stream
become APIConnectionError / APITimeoutError).

A body of an unexpected shape raises DependencyUnavailable("openai", ...): the
server is not speaking the protocol, which no retry cures.
"""

from __future__ import annotations

import array
import base64
import binascii
import sys
from typing import Any

import openai

from adapters.openai.errors import DEPENDENCY
from rag_core.errors import DependencyUnavailable
from rag_core.ports import Usage

JSON = dict[str, Any]
_AUTHENTICATED: openai.RequestOptions = {"security": {"bearer_auth": True}}


async def post_json(client: openai.AsyncOpenAI, path: str, body: JSON) -> JSON:
    """POST ``body`` to ``path`` (relative to the client's base URL); the JSON object
    answered. Errors are the SDK's (APIStatusError, APIConnectionError, ...)."""
    answer = await client.post(path, cast_to=JSON, body=body, options=_AUTHENTICATED)
    if not isinstance(answer, dict):
        raise malformed(f"{path} answered {type(answer).__name__}, not an object")
    return answer


async def open_stream(
    client: openai.AsyncOpenAI, path: str, body: JSON
) -> openai.AsyncStream[JSON]:
    """POST ``body`` with ``stream: true``; the stream of decoded ``data:`` objects.
    The caller closes it (``await stream.close()``)."""
    return await client.post(
        path,
        cast_to=JSON,
        body={**body, "stream": True},
        options=_AUTHENTICATED,
        stream=True,
        stream_cls=openai.AsyncStream[JSON],
    )


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
