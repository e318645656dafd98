"""Streaming answers and the OpenAI-compatible endpoint over real HTTP
(uvicorn on loopback), with a scripted chat model behind the answerer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence

import httpx
import openai
import pytest
import uvicorn

from adapters.settings import Settings
from adapters.system import SystemClock, UuidGenerator
from entrypoints.container import Container, in_memory_container
from entrypoints.http.app import create_app
from rag_core.answering import Answerer
from rag_core.answers import Usage
from rag_core.chat import ChatService
from rag_core.chunking import Chunker
from rag_core.ingestion import Ingestor
from rag_core.lexical import LexicalEncoder
from rag_core.markdown import parse_document
from rag_core.ports import ChatMessage, Completion, Delta
from rag_core.retrieval import Retriever

DOC = "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n"


class SlowModel:
    """Streams its reply word by word, with a delay; records cancellation."""

    def __init__(self, words: int = 6, delay: float = 0.0) -> None:
        self.reply = " ".join(["A", "topic", "is", "a", "bus"][: max(1, words)]) + " [1]."
        self.delay = delay
        self.finished = 0
        self.cancelled = 0

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        return Completion(self.reply, Usage(7, 3))

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        try:
            for word in self.reply.split(" "):
                await asyncio.sleep(self.delay)
                yield Delta(word + " ")
            yield Delta("", Usage(7, 3))
            self.finished += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


async def container_with(model: SlowModel) -> Container:
    s = Settings(_env_file=None)
    container = await in_memory_container(s)
    encoder = LexicalEncoder()
    await Ingestor(container.index, encoder, Chunker()).ingest(
        [parse_document("docs/topics.md", DOC)]
    )
    container.answerer = Answerer(Retriever(container.index, encoder), model)
    container.chat = ChatService(
        container.answerer, container.conversations, SystemClock(), UuidGenerator()
    )
    return container


class Server:
    def __init__(self, container: Container) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        app = create_app(container.settings, container)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served() -> Iterator[tuple[str, SlowModel]]:
    model = SlowModel(delay=0.01)
    container = asyncio.run(container_with(model))
    with Server(container) as base:
        yield base, model


def parse_sse(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def test_chat_stream_event_order(served: tuple[str, SlowModel]) -> None:
    base, _ = served
    response = httpx.post(f"{base}/chat/stream", json={"query": "What is a topic?"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[-3:] == ["citations", "final", "done"]
    assert names.count("delta") >= 3
    text = "".join(json.loads(d)["text"] for n, d in events if n == "delta")
    final = json.loads(events[-2][1])
    assert text.strip() == final["response"] and final["mode"] == "generated"
    assert final["usage"]["completion_tokens"] == 3
    assert json.loads(events[-3][1])["citations"][0]["url"] == "/docs/topics"


def test_chat_stream_bad_input_is_a_plain_422(served: tuple[str, SlowModel]) -> None:
    base, _ = served
    assert httpx.post(f"{base}/chat/stream", json={"query": ""}, timeout=10).status_code == 422


def test_disconnect_cancels_the_upstream_generation() -> None:
    model = SlowModel(delay=0.2)
    container = asyncio.run(container_with(model))
    with (
        Server(container) as base,
        httpx.stream(
            "POST", f"{base}/chat/stream", json={"query": "What is a topic?"}, timeout=10
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break
    deadline = threading.Event()
    for _ in range(100):
        if model.cancelled:
            break
        deadline.wait(0.02)
    assert model.cancelled == 1 and model.finished == 0


def test_official_openai_client_streaming_and_not(served: tuple[str, SlowModel]) -> None:
    base, _ = served
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=10)
    assert [m.id for m in client.models.list()] == ["rag-backend"]
    completion = client.chat.completions.create(
        model="rag-backend", messages=[{"role": "user", "content": "What is a topic?"}]
    )
    assert completion.choices[0].message.content == "A topic is a bus [1]."
    assert completion.model_extra and completion.model_extra["sources"][0]["url"] == "/docs/topics"
    pieces = client.chat.completions.create(
        model="rag-backend",
        messages=[{"role": "user", "content": "What is a topic?"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)
    assert text.strip() == "A topic is a bus [1]."


def test_openai_endpoint_needs_a_user_message(served: tuple[str, SlowModel]) -> None:
    base, _ = served
    response = httpx.post(
        f"{base}/v1/chat/completions",
        json={"messages": [{"role": "system", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 422 and "user message" in response.json()["detail"]
