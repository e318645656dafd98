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
import base64
import functools
import json
import struct
from typing import Any

import uvloop
from aiohttp import web

from fakes.openai_content import WORD, chat_usage, cite_first_passage, completion_head, fake_vector

MODELS = ("gpt-4o-mini", "text-embedding-3-small")


@functools.lru_cache(maxsize=4096)
def _vector(model: str, text: str, dimension: int) -> str:
    values = fake_vector(model, text, dimension)
    return base64.b64encode(struct.pack(f"<{dimension}f", *values)).decode()


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
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]
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
        if body.get("encoding_format") == "base64":
            vectors: list[object] = [_vector(model, t, dimension) for t in inputs]
        else:
            vectors = [fake_vector(model, t, dimension) for t in inputs]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        tokens = sum(len(t.split()) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

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
            message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return web.json_response(answer)
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
            if include_usage:
                extra.setdefault("usage", None)
            chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        await response.write(event([choice({"role": "assistant", "content": "", "refusal": None})]))
        for token in tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            await response.write(event([choice({"content": token})]))
        await response.write(event([choice({}, "stop")]))
        if include_usage:
            await response.write(event([], usage=usage))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(status: int, message: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return web.json_response({"error": error}, status=status)


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
