"""One fault scenario per dependency, observed only through the public HTTP API:
healthy -> failures -> circuit open (fast 503 or a degraded answer, visible in
/health and /health/circuits) -> dependency back -> half-open -> closed.
A fake clock replaces waiting for recovery."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapters.memory.index import InMemoryIndex
from adapters.openai import OpenAIChatModel, RetryPolicy, build_openai_client
from adapters.settings import Settings
from entrypoints.bootstrap import build_container
from entrypoints.container import Container, in_memory_container
from entrypoints.http.app import create_app
from fakes.openai_server import FakeOpenAI
from faults.proxy import FaultProxy
from postgres import fresh_database
from rag_core.errors import DependencyUnavailable
from rag_core.markdown import parse_document
from rag_core.ports import SearchQuery
from rag_core.testing import FakeClock

DOCS = {
    "docs/topics.md": "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n",
    "docs/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
}
QUESTION = {"query": "What is a topic?"}


class FlakyIndex(InMemoryIndex):
    """The in-memory index with a switch that makes it fail like an unreachable Qdrant."""

    down = False
    searches = 0

    async def search(self, query: SearchQuery) -> list:  # type: ignore[type-arg]
        self.searches += 1
        if self.down:
            raise DependencyUnavailable("qdrant", "ConnectError")
        return await super().search(query)

    async def probe(self) -> None:
        if self.down:
            raise DependencyUnavailable("qdrant", "ConnectError")


async def serving(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(container.settings, container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def ingest(container: Container) -> None:
    await container.ingest([parse_document(p, t) for p, t in DOCS.items()], scope="docs/")


async def circuit(client: httpx.AsyncClient, name: str) -> str:
    state: str = (await client.get("/health/circuits")).json()[name]["state"]
    return state


async def test_openai_down_answers_extractively_then_recovers() -> None:
    clock = FakeClock(seconds=1000.0)
    settings = Settings(_env_file=None, openai_breaker_threshold=2, openai_breaker_recovery=30)
    with FakeOpenAI() as fake:
        client = build_openai_client("sk-test", fake.base_url, read_timeout=5)
        model = OpenAIChatModel(client, "gpt-4o-mini", retry=RetryPolicy(attempts=1))
        container = await in_memory_container(settings, chat_model=model, clock=clock)
        await ingest(container)
        async for http in serving(container):
            assert (await http.post("/chat", json=QUESTION)).json()["mode"] == "generated"

            fake.fail_next(500, times=2, endpoint="chat")  # not the health probe's /models
            for _ in range(2):
                body = (await http.post("/chat", json=QUESTION)).json()
                assert body["mode"] == "extractive" and body["degraded"] == ["openai"]
                assert body["sources"] and "[1]" in body["response"]
            assert await circuit(http, "openai") == "open"
            health = (await http.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["components"]["openai"]["circuit_state"] == "open"

            calls = fake.requests["chat"]
            started = time.monotonic()
            fast = (await http.post("/chat", json=QUESTION)).json()
            assert fast["mode"] == "extractive" and time.monotonic() - started < 1
            assert fake.requests["chat"] == calls  # refused without calling upstream
            refused = await http.post("/translate", json={"text": "hello"})
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1

            clock.advance(31)
            assert await circuit(http, "openai") == "half_open"
            assert (await http.post("/chat", json=QUESTION)).json()["mode"] == "generated"
            assert await circuit(http, "openai") == "closed"
            assert (await http.get("/health")).json()["status"] == "healthy"
        await client.close()


async def test_qdrant_down_serves_selections_fails_fast_then_recovers() -> None:
    clock = FakeClock(seconds=1000.0)
    settings = Settings(_env_file=None, qdrant_breaker_threshold=2, qdrant_breaker_recovery=15)
    index = FlakyIndex()
    container = await in_memory_container(settings, index=index, clock=clock)
    await ingest(container)
    async for http in serving(container):
        assert (await http.post("/chat", json=QUESTION)).status_code == 200
        index.down = True
        unavailable = await http.post("/chat", json=QUESTION)
        assert unavailable.status_code == 503 and "Retry-After" in unavailable.headers
        selected = await http.post(
            "/chat", json={**QUESTION, "selected_text": "A topic carries messages between nodes."}
        )
        body = selected.json()
        assert selected.status_code == 200 and body["mode"] == "selection"
        assert body["degraded"] == ["qdrant"] and body["sources"][0]["title"] == "Selected text"
        assert await circuit(http, "qdrant") == "open"

        searches = index.searches
        fast = await http.post("/chat", json=QUESTION)
        assert fast.status_code == 503 and index.searches == searches  # not even tried
        assert 1 <= int(fast.headers["retry-after"]) <= 15
        await container.health.refresh()
        health = await http.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/api/auth/get-session")).status_code == 200  # accounts unaffected

        index.down = False
        clock.advance(16)
        assert await circuit(http, "qdrant") == "half_open"
        assert (await http.post("/chat", json=QUESTION)).status_code == 200
        assert await circuit(http, "qdrant") == "closed"
        await container.health.refresh()
        assert (await http.get("/health")).json()["status"] == "healthy"


def through(proxy: FaultProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{proxy.host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.mark.parametrize("outage", ["refuse", "blackhole"])
async def test_postgres_down_keeps_answering_and_loses_no_turn(
    tmp_path: Path, database_url: str, outage: str
) -> None:
    clock = FakeClock(seconds=1000.0)
    upstream = urlsplit(database_url)
    async with FaultProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432) as proxy:
        settings = Settings(
            _env_file=None,
            database_url=SecretStr(through(proxy, database_url)),
            data_dir=tmp_path,
            database_timeout=1,
            database_breaker_threshold=2,
            database_breaker_recovery=15,
            better_auth_secret=SecretStr("s" * 40),
        )
        container = await build_container(settings, clock=clock)
        try:
            await ingest(container)
            async for http in serving(container):
                account = {"email": "r@example.com", "name": "R", "password": "long enough pw"}
                signed = (await http.post("/api/auth/sign-up", json=account)).json()
                auth = {"Authorization": f"Bearer {signed['session']['accessToken']}"}
                first = (await http.post("/chat", json=QUESTION, headers=auth)).json()
                session_id = first["session_id"]

                getattr(proxy, outage)()  # refused connections, or silence
                asked = []
                for question in ("What is Gazebo?", "What simulates robots?", "What is a bus?"):
                    started = time.monotonic()
                    response = await http.post(
                        "/chat", json={"query": question, "session_id": session_id}, headers=auth
                    )
                    assert response.status_code == 200, response.text
                    assert time.monotonic() - started < 8  # each hung call is bounded
                    asked.append(question)
                history = await http.get("/api/chat/sessions", headers=auth)
                assert history.status_code == 503 and "Retry-After" in history.headers
                await container.health.refresh()
                components = (await http.get("/health")).json()["components"]
                assert components["database"]["status"] == "fail"
                assert components["outbox"]["status"] == "fail"  # turns are waiting
                assert await circuit(http, "postgres") == "open"

                proxy.pass_through()
                clock.advance(16)
                assert container.outbox is not None
                await container.outbox.flush()
                stored = await http.get(f"/api/chat/sessions/{session_id}", headers=auth)
                assert stored.status_code == 200, stored.text
                users = [m["content"] for m in stored.json()["messages"] if m["role"] == "user"]
                assert users == [QUESTION["query"], *asked]  # in order, none lost, none twice
                assert await circuit(http, "postgres") == "closed"
        finally:
            await container.aclose()
