"""The fake OpenAI server on one event loop, for load figures (``--fake loop``).

``tests/fakes/openai_server.py`` serves each connection on its own thread: right for
the tests (faults, records, knobs changed mid-test), but under a mixed load of a few
hundred connections its threads queue for the GIL and for a core, and its own delay
shows up in the service's figures (bench/README.md, "Topology and peer"). This one
answers the same: the same replies (``cite_first_passage``), the same vectors
(``fake_vector``, kept in a small cache: the scenarios rotate 64 questions), a chat
stream in OpenAI's Server-Sent Events format, one write per event, but on one
aiohttp application on uvloop, with no faults, records or key check. Same command line as the tests' fake::

    python -m bench.fake_loop --port 8001 --first-byte-latency 1.0 --embedding-latency 0.05

with the project root and tests/ on PYTHONPATH (``bench.common.fake_openai(kind="loop")``
sets both). aiohttp and uvloop are already the project's dependencies (the openai SDK's
aiohttp transport, uvicorn's loop); nothing else is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from typing import Any

import uvloop
from aiohttp import web

from fakes.openai_content import (
    WORD,
    chat_usage,
    chunk_json,
    cite_first_passage,
    completion_answer,
    completion_head,
    delta_choice,
    embedding_of,
    embeddings_answer,
    error_answer,
    model_entry,
)

MODELS = ("gpt-4o-mini", "text-embedding-3-small")


@functools.lru_cache(maxsize=4096)
def _embedding(model: str, text: str, dimension: int, as_base64: bool) -> object:
    return embedding_of(model, text, dimension, as_base64=as_base64)


class FakeLoop:
    def __init__(self, args: argparse.Namespace) -> None:
        self.first_byte = args.first_byte_latency
        self.token_delay = args.token_delay
        self.embedding_latency = args.embedding_latency
        self.dimension = args.dimension

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.add_routes(
            [
                web.get("/v1/models", self.models),
                web.post("/v1/embeddings", self.embeddings),
                web.post("/v1/chat/completions", self.chat),
            ]
        )
        return app

    async def models(self, request: web.Request) -> web.Response:
        data = [model_entry(m) for m in MODELS]
        return web.json_response({"object": "list", "data": data})

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(t, str) for t in inputs)
        ):
            return _error(400, "'$.input' is invalid. Please check the API reference.")
        await asyncio.sleep(self.embedding_latency)
        model = str(body.get("model", ""))
        dimension = int(body.get("dimensions") or self.dimension)
        as_base64 = body.get("encoding_format") == "base64"
        embeddings = [_embedding(model, t, dimension, as_base64) for t in inputs]
        return web.json_response(embeddings_answer(model, inputs, embeddings))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return _error(400, "'messages' must be a list of messages.")
        await asyncio.sleep(self.first_byte)
        tokens = WORD.findall(cite_first_passage(messages))
        usage = chat_usage(messages, tokens)
        head = completion_head(str(body.get("model", "")))
        if not body.get("stream"):
            return web.json_response(completion_answer(head, "".join(tokens), "stop", usage))
        return await self._stream(request, head, tokens, usage, body)

    async def _stream(
        self,
        request: web.Request,
        head: dict[str, Any],
        tokens: list[str],
        usage: dict[str, int],
        body: dict[str, Any],
    ) -> web.StreamResponse:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = chunk_json(head, choices, include_usage=include_usage, **extra)
            return f"data: {chunk}\n\n".encode()

        role = {"role": "assistant", "content": "", "refusal": None}
        await response.write(event([delta_choice(role)]))
        for token in tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            await response.write(event([delta_choice({"content": token})]))
        await response.write(event([delta_choice({}, "stop")]))
        if include_usage:
            await response.write(event([], usage=usage))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response(error_answer(status, message), status=status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-byte-latency", type=float, default=0.0)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--embedding-latency", type=float, default=0.0)
    parser.add_argument("--dimension", type=int, default=1536)
    args = parser.parse_args(argv)
    web.run_app(
        FakeLoop(args).app(),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
