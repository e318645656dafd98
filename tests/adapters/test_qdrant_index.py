"""Qdrant-specific behaviour: URL resolution, the local folder lock, persistence,
and how vendor errors are translated (a closed port, and a fake REST server)."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from qdrant_client import AsyncQdrantClient, models

from adapters import qdrant_index
from adapters.index_lock import IndexLocked
from adapters.qdrant_index import QdrantIndex
from qdrant_local import open_local
from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import DependencyUnavailable, IndexMismatch, InvalidInput
from rag_core.ports import SearchQuery


def _chunk(n: int, document_id: str = "docs/a.md") -> IndexedChunk:
    chunk = Chunk(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}#{n}")),
        document_id=document_id,
        ordinal=n,
        text=f"chunk {n}",
        heading_path=("Intro",),
        content_hash=f"h{n}",
        route="/docs/a",
        title="A",
        section="docs",
    )
    return IndexedChunk(chunk=chunk, sparse=SparseVector(indices=(1, n + 2), values=(1.0, 0.5)))


LEXICAL_QUERY = SearchQuery(sparse=SparseVector(indices=(1,), values=(1.0,)))


def _rest_base_url(index: QdrantIndex) -> str:
    return str(index.client.http.client.host)


# --- remote URL resolution (no network: the client connects lazily) ---


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://qdrant.example.com:443", "https://qdrant.example.com:443"),
        ("https://qdrant.example.com", "https://qdrant.example.com:6333"),
        ("http://localhost:7000", "http://localhost:7000"),
        ("https://qdrant.example.com:8443/qdrant", "https://qdrant.example.com:8443/qdrant"),
    ],
)
async def test_remote_url_port_resolution(url: str, expected: str) -> None:
    index = QdrantIndex.remote(url, api_key=None, collection="docs", timeout=2.5)
    try:
        assert _rest_base_url(index) == expected
        assert index.client.init_options["timeout"] == 3  # whole seconds, rounded up
    finally:
        await index.close()


async def test_remote_with_api_key_over_https() -> None:
    index = QdrantIndex.remote("https://x.cloud.qdrant.io:443", "secret", "docs", timeout=5.0)
    await index.close()
    assert _rest_base_url(index) == "https://x.cloud.qdrant.io:443"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@qdrant.example.com/prefix", "qdrant.example.com:6333"),
        ("http://127.0.0.1:7000", "127.0.0.1:7000"),
        ("http://[::1]:7000", "[::1]:7000"),
    ],
)
def test_address_is_host_and_port_without_credentials(url: str, expected: str) -> None:
    assert qdrant_index.address(url) == expected


@pytest.mark.parametrize("url", ["qdrant.example.com:6333", "ftp://qdrant.example.com"])
def test_remote_rejects_a_url_without_http_scheme(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        QdrantIndex.remote(url, None, "docs", timeout=1.0)


# --- local mode: lock and persistence ---


async def test_second_client_on_the_same_folder_is_locked(tmp_path: Path) -> None:
    first = open_local(tmp_path, "docs")
    await first.prepare(None)
    with pytest.raises(IndexLocked, match="another process holds") as caught:
        open_local(tmp_path, "docs")
    assert isinstance(caught.value, DependencyUnavailable)
    del caught
    gc.collect()  # the half-opened client must have nothing left open to warn about
    await first.close()
    reopened = open_local(tmp_path, "docs")
    await reopened.close()


async def test_folder_held_by_another_process_is_locked(tmp_path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from qdrant_client import QdrantClient; "
        f"c = QdrantClient(path={str(tmp_path)!r}); print('ready', flush=True); "
        "sys.stdin.read(); c.close()",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"ready\n"
        with pytest.raises(IndexLocked):
            open_local(tmp_path, "docs")
    finally:
        await asyncio.wait_for(holder.communicate(b""), timeout=30)  # EOF ends it
    index = open_local(tmp_path, "docs")  # released when the holder exits
    await index.close()


async def test_local_folder_persists_across_close(tmp_path: Path) -> None:
    index = open_local(tmp_path, "docs")
    await index.prepare(None)
    await index.upsert([_chunk(0), _chunk(1)])
    await index.close()

    reopened = open_local(tmp_path, "docs")
    try:
        await reopened.prepare(None)
        assert await reopened.count() == 2
        found = {p.chunk.id: p.chunk for p in await reopened.search(LEXICAL_QUERY)}
        assert found == {c.chunk.id: c.chunk for c in (_chunk(0), _chunk(1))}
    finally:
        await reopened.close()


# --- paging, ids, layout ---


@pytest.fixture
async def memory() -> AsyncIterator[QdrantIndex]:
    index = QdrantIndex.memory("docs")
    yield index
    await index.close()


async def test_upsert_batches_and_scroll_pages(
    memory: QdrantIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qdrant_index, "UPSERT_BATCH", 3)
    monkeypatch.setattr(qdrant_index, "SCROLL_PAGE", 2)
    chunks = [_chunk(n, f"docs/{n % 3}.md") for n in range(10)]
    await memory.prepare(None)
    await memory.upsert(chunks)
    assert await memory.count() == 10
    grouped = await memory.chunk_ids_by_document()
    assert grouped == {
        f"docs/{d}.md": frozenset(
            c.chunk.id for c in chunks if c.chunk.document_id == f"docs/{d}.md"
        )
        for d in range(3)
    }


async def test_non_canonical_chunk_id_is_invalid_input(memory: QdrantIndex) -> None:
    await memory.prepare(None)
    item = _chunk(0)
    for bad in (item.chunk.id.upper(), "not-a-uuid"):
        with pytest.raises(InvalidInput):
            await memory.upsert([attrs.evolve(item, chunk=attrs.evolve(item.chunk, id=bad))])
    await memory.delete(["not-a-uuid"])  # unknown, so ignored


async def test_search_before_prepare_is_a_mismatch(memory: QdrantIndex) -> None:
    with pytest.raises(IndexMismatch, match="not found"):
        await memory.search(LEXICAL_QUERY)


async def test_foreign_collection_layout_is_a_mismatch() -> None:
    client = AsyncQdrantClient(location=":memory:")
    await client.create_collection(
        "docs", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    index = QdrantIndex(client, "docs")
    try:
        with pytest.raises(IndexMismatch, match="re-index"):
            await index.prepare(4)
    finally:
        await index.close()


async def test_mismatch_message_names_collection_and_dimensions(memory: QdrantIndex) -> None:
    await memory.prepare(384)
    with pytest.raises(IndexMismatch) as caught:
        await memory.prepare(768)
    assert "'docs'" in str(caught.value)
    assert "384" in str(caught.value) and "768" in str(caught.value)


# --- vendor errors ---


async def test_unreachable_server_is_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    index = QdrantIndex.remote(f"http://127.0.0.1:{port}", None, "docs", timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(DependencyUnavailable) as caught:
            await index.probe()
        with pytest.raises(DependencyUnavailable):
            await index.search(LEXICAL_QUERY)
    finally:
        await index.close()
    assert time.monotonic() - started < 1.0
    assert caught.value.dependency == "qdrant"
    assert caught.value.reason == "ConnectError"
    assert str(port) not in str(caught.value)


class FakeQdrant:
    """A scripted Qdrant REST server (an httpx transport): canned answers by method and path."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], httpx.Response] = {}
        self.requests: list[tuple[str, str, Any]] = []

    def answer(self, method: str, path: str, status: int, result: Any = True, **kw: Any) -> None:
        body = {"result": result, "status": "ok", "time": 0.0}
        if status >= 400:
            body = {"status": {"error": str(result)}, "time": 0.0}
        self.routes[(method, path)] = httpx.Response(status, json=body, **kw)

    def handle(self, request: httpx.Request) -> httpx.Response:
        content = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, content))
        default = httpx.Response(404, json={"status": {"error": "no route"}, "time": 0.0})
        return self.routes.get((request.method, request.url.path), default)

    def index(self) -> QdrantIndex:
        client = AsyncQdrantClient(
            url="https://fake.qdrant.test:443",
            api_key="secret-key",
            check_compatibility=False,
            transport=httpx.MockTransport(self.handle),
        )
        return QdrantIndex(client, "docs", timeout=1.0)


async def _collection_info(dense_dimension: int | None, *indexed: str) -> Any:
    """A real CollectionInfo as a server would send it (taken from local mode),
    with keyword payload indexes on ``indexed``."""
    local = QdrantIndex.memory("docs")
    await local.prepare(dense_dimension)
    info = (await local.client.get_collection("docs")).model_dump(mode="json")
    await local.close()
    info["payload_schema"] = {field: {"data_type": "keyword", "points": 0} for field in indexed}
    return info


def _payload_indexes_created(fake: FakeQdrant) -> list[Any]:
    return [body for _, path, body in fake.requests if path == "/collections/docs/index"]


async def test_server_creation_adds_keyword_payload_indexes() -> None:
    fake = FakeQdrant()
    fake.answer("GET", "/collections/docs/exists", 200, {"exists": False})
    fake.answer("PUT", "/collections/docs", 200)
    fake.answer("GET", "/collections/docs", 200, await _collection_info(4))
    fake.answer("PUT", "/collections/docs/index", 200, {"operation_id": 1, "status": "completed"})
    index = fake.index()
    await index.prepare(4)
    await index.close()
    created = [
        body
        for method, path, body in fake.requests
        if (method, path) == ("PUT", "/collections/docs")
    ]
    assert created[0]["vectors"] == {"dense": {"size": 4, "distance": "Cosine"}}
    assert created[0]["sparse_vectors"] == {"lexical": {"modifier": "idf"}}
    assert _payload_indexes_created(fake) == [
        {"field_name": "document_id", "field_schema": "keyword"},
        {"field_name": "section", "field_schema": "keyword"},
        {"field_name": "source", "field_schema": "keyword"},
    ]


async def test_existing_collection_gets_only_its_missing_payload_index() -> None:
    fake = FakeQdrant()
    fake.answer("GET", "/collections/docs/exists", 200, {"exists": True})
    fake.answer("GET", "/collections/docs", 200, await _collection_info(None, "document_id"))
    fake.answer("PUT", "/collections/docs/index", 200, {"operation_id": 1, "status": "completed"})
    index = fake.index()
    await index.prepare(None)
    await index.close()
    assert _payload_indexes_created(fake) == [
        {"field_name": "section", "field_schema": "keyword"},
        {"field_name": "source", "field_schema": "keyword"},
    ]


async def test_concurrent_creator_is_tolerated_and_checked() -> None:
    fake = FakeQdrant()
    fake.answer("GET", "/collections/docs/exists", 200, {"exists": False})
    fake.answer("PUT", "/collections/docs", 409, "Collection `docs` already exists!")
    fake.answer(
        "GET",
        "/collections/docs",
        200,
        await _collection_info(4, "document_id", "section", "source"),
    )
    index = fake.index()
    await index.prepare(4)
    with pytest.raises(IndexMismatch, match="dimension 4"):
        await index.prepare(8)
    await index.close()
    assert _payload_indexes_created(fake) == []


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (400, {}, IndexMismatch, None),
        (404, {}, IndexMismatch, None),
        (401, {}, DependencyUnavailable, None),
        (429, {"Retry-After": "7"}, DependencyUnavailable, 7.0),
        (503, {"Retry-After": "2"}, DependencyUnavailable, 2.0),
        (500, {}, DependencyUnavailable, None),
    ],
)
async def test_server_errors_are_translated(
    status: int, headers: dict[str, str], expected: type[Exception], retry_after: float | None
) -> None:
    fake = FakeQdrant()
    fake.answer("POST", "/collections/docs/points/count", status, "Wrong input", headers=headers)
    index = fake.index()
    with pytest.raises(expected) as caught:
        await index.count()
    await index.close()
    error = caught.value
    assert "secret-key" not in str(error) and "fake.qdrant.test" not in str(error)
    if isinstance(error, DependencyUnavailable):
        assert error.retry_after == retry_after
    else:
        assert "Wrong input" in str(error)
