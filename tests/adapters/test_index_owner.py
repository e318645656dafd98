"""The index owner's socket: authentication, errors, timeouts, long answers.

The VectorIndex contract itself runs over the socket in tests/contract/test_vector_index.py;
the owner as a process of its own in tests/test_index_owner_process.py.
"""

from __future__ import annotations

import asyncio
import random
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest

from adapters.index_lock import IndexLocked
from adapters.index_owner import OwnerError, RemoteIndex, key_path, serve_index
from adapters.index_owner import server as owner_server
from adapters.index_owner.frames import HEADER
from adapters.memory.index import InMemoryIndex
from adapters.testing.contracts.vector_index import chunk_id, indexed, query
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import (
    Conflict,
    DependencyUnavailable,
    IndexMismatch,
    InvalidInput,
    NotFound,
    RagError,
)
from rag_core.ports import SearchQuery, VectorIndex

Served = Callable[..., Awaitable[Path]]


class StubIndex(InMemoryIndex):
    """An in-memory index that records its calls, and whose search may raise or wait."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.error: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.write_gate: asyncio.Event | None = None
        self.searching = 0
        self.most_searching = 0
        self.all_searching = asyncio.Event()  # set when `expected` searches wait together
        self.expected = 20

    async def search(self, query: SearchQuery) -> list[Passage]:
        self.calls.append("search")
        if self.error is not None:
            raise self.error
        self.searching += 1
        self.most_searching = max(self.most_searching, self.searching)
        if self.searching == self.expected:
            self.all_searching.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            return await super().search(query)
        finally:
            self.searching -= 1

    async def count(self) -> int:
        self.calls.append("count")
        return await super().count()

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        self.calls.append("neighbourhood")
        return await super().neighbourhood(spans)

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if self.write_gate is not None:  # a write that takes its time, as the engine's may
            await self.write_gate.wait()
        await super().upsert(chunks)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Served]:
    """Start owners in this loop: ``await serve(index, **options)`` gives the socket."""
    tasks: list[asyncio.Task[None]] = []

    async def start(index: VectorIndex, name: str = "owner.sock", **options: object) -> Path:
        path = tmp_path / name
        ready = asyncio.Event()
        task = asyncio.create_task(serve_index(index, path, ready=ready.set, **options))  # type: ignore[arg-type]
        tasks.append(task)
        await asyncio.wait_for(ready.wait(), 5)
        return path

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_socket_and_key_are_private_and_removed_at_the_end(
    tmp_path: Path, serve: Served
) -> None:
    path = tmp_path / "owner.sock"
    ready = asyncio.Event()
    task = asyncio.create_task(serve_index(InMemoryIndex(), path, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 5)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path(path).stat().st_mode) == 0o600
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not path.exists() and not key_path(path).exists()


async def test_a_wrong_secret_is_refused_before_any_request_is_read(serve: Served) -> None:
    index = StubIndex()
    path = await serve(index)
    intruder = RemoteIndex(path, secret=b"not the secret", timeout=2)
    with pytest.raises(DependencyUnavailable, match="authentication failed") as caught:
        await intruder.count()
    assert caught.value.dependency == "qdrant"
    await intruder.close()
    assert index.calls == []
    client = RemoteIndex(path, timeout=2)  # the secret from the key file
    assert await client.count() == 0
    await client.close()


async def test_a_request_without_the_handshake_gets_no_answer(serve: Served) -> None:
    index = StubIndex()
    path = await serve(index)
    reader, writer = await asyncio.open_unix_connection(path)
    await reader.readexactly(32)  # the owner's challenge
    request = b'{"id":0,"op":"count","args":[]}' + b" " * 64
    writer.write(HEADER.pack(len(request)) + request)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
    writer.close()
    assert index.calls == []


async def test_a_silent_connection_is_dropped_after_the_handshake_timeout(
    serve: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owner_server, "HANDSHAKE_TIMEOUT", 0.2)
    path = await serve(InMemoryIndex())
    reader, writer = await asyncio.open_unix_connection(path)
    await reader.readexactly(32)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.parametrize(
    "error",
    [
        IndexMismatch("laid out for 384 dimensions"),
        InvalidInput("not a canonical UUID"),
        NotFound("no such chunk"),
        Conflict("taken"),
        RagError("something of ours"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_domain_errors_cross_as_their_own_type(serve: Served, error: RagError) -> None:
    index = StubIndex()
    index.error = error
    client = RemoteIndex(await serve(index), timeout=2)
    with pytest.raises(RagError) as caught:
        await client.search(query({1: 1.0}))
    assert type(caught.value) is type(error)
    assert str(caught.value) == str(error)
    await client.close()


async def test_an_unavailable_dependency_crosses_with_its_fields(
    serve: Served, tmp_path: Path
) -> None:
    index = StubIndex()
    client = RemoteIndex(await serve(index), timeout=2)
    index.error = DependencyUnavailable("qdrant", "engine failed", retry_after=2.5)
    with pytest.raises(DependencyUnavailable) as caught:
        await client.search(query({1: 1.0}))
    assert (caught.value.dependency, caught.value.reason) == ("qdrant", "engine failed")
    assert caught.value.retry_after == 2.5
    index.error = IndexLocked(tmp_path)  # a subclass crosses as its known base
    with pytest.raises(DependencyUnavailable, match="another process holds"):
        await client.search(query({1: 1.0}))
    await client.close()


async def test_anything_else_is_an_owner_error_and_the_connection_goes_on(
    serve: Served,
) -> None:
    index = StubIndex()
    client = RemoteIndex(await serve(index), timeout=2)
    index.error = ValueError("a bug")
    with pytest.raises(OwnerError, match="ValueError: a bug"):
        await client.search(query({1: 1.0}))
    assert await client.count() == 0
    await client.close()


async def test_a_request_the_owner_cannot_read_is_answered_with_an_error(serve: Served) -> None:
    client = RemoteIndex(await serve(InMemoryIndex()), timeout=2)
    for op in ("no such operation", ["not", "a", "name"]):
        with pytest.raises(InvalidInput, match="no operation"):
            await client._call(op)  # type: ignore[arg-type]
    connection = await client._connected()  # an op that is no name at all
    answer = await connection.call(None, [], asyncio.timeout(2), 2)  # type: ignore[arg-type]
    assert answer["error"]["type"] == "InvalidInput", answer
    assert await client.count() == 0  # the connection goes on
    await client.close()


async def test_an_owner_that_never_answers_is_unavailable_within_the_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mute.sock"
    connections: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # and never a byte

    server = await asyncio.start_unix_server(accept, path)
    key_path(path).write_bytes(b"x" * 32)
    client = RemoteIndex(path, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match=r"no answer to count within 0\.3 s"):
        await client.count()
    assert time.monotonic() - started < 1.5
    await client.close()
    server.close()
    for writer in connections:
        writer.close()


async def test_a_call_the_owner_does_not_finish_times_out_and_the_next_one_is_answered(
    serve: Served,
) -> None:
    index = StubIndex()
    index.gate = asyncio.Event()  # searches wait forever
    client = RemoteIndex(await serve(index), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match="no answer to search"):
        await client.search(query({1: 1.0}))
    assert time.monotonic() - started < 1.5
    assert await client.count() == 0  # the same connection: answers follow their ids
    await client.close()


async def test_no_owner_at_the_path_is_unavailable_at_once(tmp_path: Path) -> None:
    client = RemoteIndex(tmp_path / "nobody.sock", timeout=5)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match="cannot connect"):
        await client.probe()
    assert time.monotonic() - started < 1
    await client.close()
    with pytest.raises(DependencyUnavailable, match="closed"):
        await client.count()


async def test_concurrent_searches_reach_the_index_together(serve: Served) -> None:
    index = StubIndex()
    await index.prepare(None)
    await index.upsert([indexed("a", {1: 1.0})])
    index.gate = asyncio.Event()
    client = RemoteIndex(await serve(index), timeout=5)
    searches = [asyncio.create_task(client.search(query({1: 1.0}))) for _ in range(20)]
    await asyncio.wait_for(index.all_searching.wait(), 5)  # never, were they run one by one
    index.gate.set()
    results = await asyncio.gather(*searches)
    assert all([p.chunk.id for p in hits] == [chunk_id("a")] for hits in results)
    assert index.most_searching == 20
    await client.close()


async def test_long_answers_cross_in_parts(serve: Served) -> None:
    index = InMemoryIndex()
    client = RemoteIndex(await serve(index, part_items=2), timeout=5)
    await client.prepare(None)
    stored = [indexed(f"c{n}", {1: 1.0}, ordinal=n) for n in range(5)]
    await client.upsert(stored)
    assert sorted(await client.chunks(), key=lambda c: c.ordinal) == [s.chunk for s in stored]
    around = await client.neighbourhood([("docs/a.md", 1, 4)])
    assert sorted(c.ordinal for c in around) == [1, 2, 3, 4]
    assert len(await client.chunks(["docs/a.md"])) == 5
    assert await client.chunks([]) == []
    await client.close()


async def _two_workers(serve: Served, chunks: int) -> tuple[StubIndex, RemoteIndex, RemoteIndex]:
    """An owner of ``chunks`` chunks of docs/a.md, and two workers' clients of it."""
    index = StubIndex()
    path = await serve(index)
    writer, reader = RemoteIndex(path, timeout=5), RemoteIndex(path, timeout=5)
    await writer.prepare(None)
    await writer.upsert([indexed(f"c{n}", {1: 1.0}, ordinal=n) for n in range(chunks)])
    return index, writer, reader


async def test_a_worker_keeps_neighbourhoods_until_any_worker_writes(serve: Served) -> None:
    index, writer, reader = await _two_workers(serve, 4)
    spans = [("docs/a.md", 0, 2)]
    await reader.search(query({1: 1.0}))  # as in every answer, a search comes first
    texts = [c.text for c in sorted(await reader.neighbourhood(spans), key=lambda c: c.ordinal)]
    assert [c.text for c in await reader.neighbourhood(spans)] != []
    assert index.calls.count("neighbourhood") == 1  # the second came from the reader's cache

    changed = indexed("c1", {1: 1.0}, ordinal=1, text="changed")
    await writer.upsert([changed])  # by the other worker
    await reader.search(query({1: 1.0}))  # every answer tells the reader of the write
    again = sorted(await reader.neighbourhood(spans), key=lambda c: c.ordinal)
    assert [c.text for c in again] == [texts[0], "changed", texts[2]]
    assert index.calls.count("neighbourhood") == 2

    connection = reader._connection
    assert connection is not None
    await connection.close()  # lost: the next call connects anew (perhaps to a new owner)
    await reader.neighbourhood(spans)
    assert index.calls.count("neighbourhood") == 3  # what came on the old one is not served
    await reader.search(query({1: 1.0}))
    await reader.neighbourhood(spans)
    await reader.neighbourhood(spans)
    assert index.calls.count("neighbourhood") == 4  # what comes on the new one is kept
    await writer.close()
    await reader.close()
    with pytest.raises(DependencyUnavailable, match="closed"):
        await reader.neighbourhood(spans)  # not answered from what it kept


async def test_a_write_whose_worker_goes_away_counts_once_it_is_done(serve: Served) -> None:
    index, writer, reader = await _two_workers(serve, 3)
    spans = [("docs/a.md", 0, 2)]
    index.write_gate = asyncio.Event()
    writing = asyncio.create_task(
        writer.upsert([indexed("c1", {1: 1.0}, ordinal=1, text="changed")])
    )
    await asyncio.sleep(0.1)  # the owner is in the write
    writing.cancel()
    await writer.close()  # the worker goes away: the owner drops its connection
    await asyncio.sleep(0.1)
    await reader.search(query({1: 1.0}))
    assert "changed" not in [c.text for c in await reader.neighbourhood(spans)]  # not yet
    index.write_gate.set()  # the write lands after its worker is gone
    await asyncio.sleep(0.1)
    await reader.search(query({1: 1.0}))
    assert "changed" in [c.text for c in await reader.neighbourhood(spans)]
    await reader.close()


async def test_a_large_upsert_crosses_in_batches_and_vectors_exactly(serve: Served) -> None:
    index = InMemoryIndex()
    client = RemoteIndex(await serve(index), timeout=10)
    await client.prepare(1536)
    rng = random.Random(1)
    dense = [tuple(rng.gauss(0, 1) for _ in range(1536)) for _ in range(600)]
    items = [indexed(f"c{n}", {n: 1.0}, dense=vector, ordinal=n) for n, vector in enumerate(dense)]
    await client.upsert(items)  # about 10 MB: three requests
    assert await client.count() == 600
    [hit] = await client.search(query({}, dense=dense[123], limit=1))
    assert hit.chunk == items[123].chunk
    assert index._chunks[chunk_id("c123")] == items[123]  # every float as it was sent
    await client.delete([chunk_id(f"c{n}") for n in range(300)])
    assert await client.count() == 300
    await client.close()


async def test_a_frame_over_the_owners_limit_drops_only_that_connection(serve: Served) -> None:
    client = RemoteIndex(await serve(InMemoryIndex(), max_frame=4096), timeout=5)
    await client.prepare(1536)
    with pytest.raises(DependencyUnavailable, match="closed the connection"):
        await client.search(query({1: 1.0}, dense=(0.5,) * 1536))  # 16 kB of vector
    assert await client.count() == 0  # a new connection
    await client.close()


async def test_a_restarted_owner_is_reached_again_with_its_new_secret(
    tmp_path: Path, serve: Served
) -> None:
    index = InMemoryIndex()
    path = tmp_path / "owner.sock"
    ready = asyncio.Event()
    first = asyncio.create_task(serve_index(index, path, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 5)
    client = RemoteIndex(path, timeout=2)
    await client.prepare(None)
    await client.upsert([indexed("a", {1: 1.0})])
    secret = key_path(path).read_bytes()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    with pytest.raises(DependencyUnavailable):
        await client.count()
    await serve(index)
    assert key_path(path).read_bytes() != secret
    assert await client.count() == 1
    await client.close()


async def test_a_second_owner_at_a_live_socket_is_refused(serve: Served) -> None:
    path = await serve(InMemoryIndex())
    with pytest.raises(DependencyUnavailable, match="another index owner listens"):
        await serve_index(InMemoryIndex(), path)
    client = RemoteIndex(path, timeout=2)
    assert await client.count() == 0  # the first one still serves
    await client.close()


async def test_a_stale_socket_is_replaced(tmp_path: Path, serve: Served) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "owner.sock"))
    stale.close()  # the file stays; nobody listens
    client = RemoteIndex(await serve(InMemoryIndex()), timeout=2)
    assert await client.count() == 0
    await client.close()


async def test_after_deletes_runs_the_owners_step(serve: Served) -> None:
    ran: list[str] = []

    async def compact() -> None:
        ran.append("compact")

    with_step = RemoteIndex(await serve(InMemoryIndex(), after_deletes=compact), timeout=2)
    without = RemoteIndex(await serve(InMemoryIndex(), name="other.sock"), timeout=2)
    await with_step.after_deletes()
    await without.after_deletes()
    assert ran == ["compact"]
    await with_step.close()
    await without.close()


async def test_chunk_ids_by_document_keeps_its_shape(serve: Served) -> None:
    client = RemoteIndex(await serve(InMemoryIndex()), timeout=2)
    await client.prepare(None)
    await client.upsert([indexed("a", {1: 1.0}, source="/docs")])
    grouped: Mapping[str, frozenset[str]] = await client.chunk_ids_by_document("/docs")
    assert grouped == {"docs/a.md": frozenset({chunk_id("a")})}
    await client.close()


async def test_any_text_crosses_lone_surrogates_and_nul_included(serve: Served) -> None:
    client = RemoteIndex(await serve(InMemoryIndex()), timeout=2)
    await client.prepare(None)
    odd = indexed("odd", {1: 1.0}, text="«é» \ud800 \x00 \U0001f916")
    await client.upsert([odd])
    [hit] = await client.search(query({1: 1.0}))
    assert hit.chunk == odd.chunk
    await client.close()
