"""Qdrant unreachable at start-up (issue 14, item 7): the service starts anyway,
reports it in /health and /health/ready, answers from a selection, and prepares the
collection (and runs the DOCS_PATH ingest) once Qdrant appears, without a restart.

Qdrant is the tests' fake server (qdrant-client's local mode behind real HTTP)
reached through a fault proxy that starts as a black hole (accepts TCP, never
answers) or a closed port (connection refused), then forwards."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from adapters.memory.models import HashEmbedder
from adapters.qdrant_index import QdrantIndex
from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from fakes.qdrant_server import FakeQdrantServer
from faults.proxy import FaultProxy
from rag_core.markdown import parse_document
from rag_core.testing import FakeClock

SECRET = "qdrant-secret-key-never-logged"
SELECTION = {
    "query": "What does this say?",
    "selected_text": "A topic is a named bus over which nodes exchange messages.",
}


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.parametrize("outage", ["blackhole", "refuse"])
async def test_starts_without_qdrant_and_prepares_it_when_it_appears(
    tmp_path: Path, outage: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "topics.md").write_text(
        "# Topics\n\nA topic is a named bus over which ROS 2 nodes exchange messages.\n"
    )
    with FakeQdrantServer() as qdrant:
        async with FaultProxy("127.0.0.1", qdrant.port) as proxy:
            await asyncio.to_thread(getattr(proxy, outage))
            address = f"127.0.0.1:{proxy.port}"
            settings = Settings(
                _env_file=None,
                qdrant_url=f"http://{address}",
                qdrant_api_key=SecretStr(SECRET),
                qdrant_collection_name="docs",
                qdrant_timeout=1,
                qdrant_breaker_threshold=2,
                qdrant_breaker_recovery=5,  # longer than the checks while it is away
                health_interval=0.2,
                data_dir=tmp_path / "data",
                docs_path=str(docs),
            )
            app = create_app(settings)
            started = time.monotonic()
            async with asyncio.timeout(45), app.router.lifespan_context(app):
                assert time.monotonic() - started < 8  # bounded by Qdrant's timeout
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    assert (await http.get("/health/live")).status_code == 200

                    asked = time.monotonic()
                    health = await http.get("/health")
                    assert time.monotonic() - asked < 1
                    assert health.status_code == 503, health.text
                    index = health.json()["components"]["vector_index"]
                    assert index["status"] == "fail" and index["critical"] is True

                    ready = await http.get("/health/ready")
                    assert ready.status_code == 503 and ready.json()["status"] == "unhealthy"

                    asked = time.monotonic()
                    answer = await http.post("/chat", json=SELECTION)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["mode"] == "selection"
                    refused = await http.post("/chat", json={"query": "What is a topic?"})
                    assert refused.status_code == 503 and "Retry-After" in refused.headers
                    assert time.monotonic() - asked < 1  # the circuit opened at start-up
                    assert not qdrant.collection_exists("docs")

                    await asyncio.to_thread(proxy.pass_through)  # Qdrant appears

                    async def is_ready() -> bool:
                        return (await http.get("/health/ready")).status_code == 200

                    await eventually(is_ready, 15)
                    assert qdrant.collection_exists("docs")  # created without a restart

                    async def docs_ingested() -> bool:
                        return qdrant.count("docs") > 0

                    await eventually(docs_ingested, 15)  # the deferred DOCS_PATH ingest
                    found = await http.post("/chat", json={"query": "What is a topic?"})
                    assert found.status_code == 200, found.text
                    assert [s["title"] for s in found.json()["sources"]] == ["Topics"]
                    health = (await http.get("/health")).json()
                    assert health["components"]["vector_index"]["status"] == "pass"

    said = [r for r in caplog.records if address in r.getMessage()]
    unreachable = [r for r in said if r.levelno >= logging.WARNING]
    assert len(unreachable) == 1, [r.getMessage() for r in unreachable]  # said once
    assert "could not be reached" in unreachable[0].getMessage()
    assert unreachable[0].exc_info is None
    assert any("reached: the index is prepared" in r.getMessage() for r in said)
    assert SECRET not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.timeout(60)
async def test_a_mismatched_collection_is_re_embedded_by_the_first_call_that_reaches_it(
    tmp_path: Path,
) -> None:
    docs = [parse_document("docs/topics.md", "# Topics\n\nA topic is a named bus.\n")]
    with FakeQdrantServer() as qdrant:
        lexical = await in_memory_container(index=QdrantIndex.remote(qdrant.url, None, "docs", 5))
        await lexical.ingest(docs, source="docs")  # laid out with no dense vectors
        await lexical.aclose()
        stored = qdrant.count("docs")

        clock = FakeClock(seconds=1000.0)
        settings = Settings(_env_file=None, data_dir=tmp_path, qdrant_breaker_recovery=15)
        async with FaultProxy("127.0.0.1", qdrant.port) as proxy:
            await asyncio.to_thread(proxy.refuse)
            remote = QdrantIndex.remote(f"http://127.0.0.1:{proxy.port}", None, "docs", 5)
            embedder = HashEmbedder(dimension=16)
            container = await in_memory_container(
                settings, index=remote, embedder=embedder, clock=clock
            )
            try:
                assert container.preparation is not None and not container.preparation.prepared
                assert embedder.calls == 0

                await asyncio.to_thread(proxy.pass_through)
                clock.advance(16)  # the circuit opened at start-up lets a trial call through
                answer = (await container.chat.ask("What is a topic?")).answer
                assert [c.title for c in answer.citations] == ["Topics"]
                assert container.preparation.prepared
                assert embedder.calls >= 1  # re-embedded for the new embedder
                info = await remote.client.get_collection("docs")
                vectors = info.config.params.vectors
                assert isinstance(vectors, dict) and vectors["dense"].size == 16
                assert qdrant.count("docs") == stored
                assert not (tmp_path / "reindex-chunks.jsonl").exists()
            finally:
                await container.aclose()
