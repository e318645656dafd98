"""Every answering route says whether its answer is uncertain (the docs do not cover
the question), so a client can tell the reader."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from rag_core.markdown import parse_document

BOOK = {
    "docs/topics.md": "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n"
}
COVERED, UNCOVERED = "What is a topic?", "How long should I boil fresh pasta?"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, rate_limit_enabled=False)
    container = await in_memory_container(settings, password_cost=4)
    await container.ingestor.ingest([parse_document(p, t) for p, t in BOOK.items()])
    app = create_app(settings, container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def data_lines(text: str) -> list[str]:
    return [line[len("data:") :].strip() for line in text.splitlines() if line.startswith("data:")]


async def test_chat_says_uncertain(client: httpx.AsyncClient) -> None:
    for question, expected in [(COVERED, False), (UNCOVERED, True)]:
        body = (await client.post("/chat", json={"query": question})).json()
        assert body["uncertain"] is expected, body


async def test_the_streams_final_event_says_uncertain(client: httpx.AsyncClient) -> None:
    for question, expected in [(COVERED, False), (UNCOVERED, True)]:
        response = await client.post("/chat/stream", json={"query": question})
        events = [json.loads(d) for d in data_lines(response.text)]
        [final] = [e for e in events if "mode" in e and "response" in e]
        assert final["uncertain"] is expected


async def test_the_openai_compatible_route_says_uncertain(client: httpx.AsyncClient) -> None:
    for question, expected in [(COVERED, False), (UNCOVERED, True)]:
        messages = [{"role": "user", "content": question}]
        body: dict[str, Any] = (
            await client.post("/v1/chat/completions", json={"messages": messages})
        ).json()
        assert body["uncertain"] is expected
        streamed = await client.post(
            "/v1/chat/completions", json={"messages": messages, "stream": True}
        )
        chunks = [json.loads(d) for d in data_lines(streamed.text) if d != "[DONE]"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["uncertain"] is expected
