"""Qdrant Edge specifics: the folder lock, persistence and durability, layout checks,
compaction, error translation, and engine calls kept off the event loop."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Modifier,
)

from adapters.index_lock import IndexLocked
from adapters.qdrant_edge import EdgeIndex
from adapters.qdrant_edge import index as edge_index
from adapters.qdrant_edge.calls import translate
from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import DependencyUnavailable, IndexMismatch, InvalidInput
from rag_core.fusion import idf
from rag_core.ports import SearchQuery


def _chunk(
    n: int,
    terms: tuple[int, ...] = (1,),
    dense: tuple[float, ...] | None = None,
    document_id: str = "docs/a.md",
) -> IndexedChunk:
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
    sparse = SparseVector(indices=terms, values=tuple(1.0 for _ in terms))
    return IndexedChunk(chunk=chunk, sparse=sparse, dense=dense)


def _query(*terms: int, dense: tuple[float, ...] | None = None, limit: int = 8) -> SearchQuery:
    sparse = SparseVector(indices=terms, values=tuple(1.0 for _ in terms))
    return SearchQuery(sparse=sparse, dense=dense, limit=limit)


@pytest.fixture
async def lexical(tmp_path: Path) -> AsyncIterator[EdgeIndex]:
    index = EdgeIndex.open(tmp_path, "docs")
    await index.prepare(None)
    yield index
    await index.close()


# --- the folder lock ---


async def test_second_open_of_the_folder_is_locked(tmp_path: Path) -> None:
    first = EdgeIndex.open(tmp_path, "docs")
    await first.prepare(None)
    with pytest.raises(IndexLocked, match="another process holds") as caught:
        EdgeIndex.open(tmp_path, "docs")
    assert isinstance(caught.value, DependencyUnavailable)
    other = EdgeIndex.open(tmp_path, "other")  # another collection is another shard
    await other.close()
    await first.close()
    await first.close()  # idempotent
    reopened = EdgeIndex.open(tmp_path, "docs")
    await reopened.close()


async def test_folder_held_by_another_process_is_locked(tmp_path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from adapters.qdrant_edge import EdgeIndex; "
        f"i = EdgeIndex.open(Path({str(tmp_path)!r}), 'docs'); print('ready', flush=True); "
        "sys.stdin.read()",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"ready\n"
        with pytest.raises(IndexLocked):
            EdgeIndex.open(tmp_path, "docs")
    finally:
        await asyncio.wait_for(holder.communicate(b""), timeout=30)  # EOF ends it
    index = EdgeIndex.open(tmp_path, "docs")  # the kernel released it with the process
    await index.close()


async def test_shard_held_by_the_engine_itself_is_locked(tmp_path: Path) -> None:
    config = EdgeConfig(sparse_vectors={"lexical": EdgeSparseVectorParams(modifier=Modifier.Idf)})
    raw = EdgeShard.create(str(tmp_path / "docs"), config)  # holds the write-ahead log
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        with pytest.raises(IndexLocked):
            await index.prepare(None)
    finally:
        await index.close()
        raw.close()


# --- persistence, durability, layout ---


async def test_everything_persists_across_close(tmp_path: Path) -> None:
    index = EdgeIndex.open(tmp_path, "docs")
    await index.prepare(2)
    await index.upsert([_chunk(0, dense=(1.0, 0.0)), _chunk(1, (2,), dense=(0.0, 1.0))])
    await index.upsert([_chunk(2, document_id="docs/b.md")])
    await index.delete([_chunk(2, document_id="docs/b.md").chunk.id])
    await index.close()

    reopened = EdgeIndex.open(tmp_path, "docs")
    try:
        assert await reopened.count() == 2  # usable before prepare
        assert await reopened.chunk_ids_by_document() == {
            "docs/a.md": frozenset({_chunk(0).chunk.id, _chunk(1).chunk.id})
        }
        with pytest.raises(IndexMismatch, match=r"'docs'.*dimension 2.*dimension 3"):
            await reopened.prepare(3)
        await reopened.prepare(2)
        hits = await reopened.search(_query(1, dense=(0.0, 1.0), limit=2))
        assert {p.chunk for p in hits} == {_chunk(0).chunk, _chunk(1).chunk}
        await reopened.prepare(None)  # the embedder was removed: lexical goes on
        assert [p.chunk.id for p in await reopened.search(_query(1))] == [_chunk(0).chunk.id]
    finally:
        await reopened.close()
    shard = EdgeShard.load(str(tmp_path / "docs"))
    assert set(shard.info().payload_schema) == {"document_id", "section", "source"}
    shard.close()


async def test_acknowledged_writes_survive_a_killed_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, uuid
        from pathlib import Path
        from adapters.qdrant_edge import EdgeIndex
        from rag_core.documents import Chunk, IndexedChunk, SparseVector

        async def main():
            index = EdgeIndex.open(Path({str(tmp_path)!r}), "docs")
            await index.prepare(None)
            ids = [str(uuid.uuid4()) for _ in range(50)]
            await index.upsert([
                IndexedChunk(
                    chunk=Chunk(id=chunk_id, document_id="d", ordinal=n, text="t",
                                heading_path=(), content_hash="h", route="/", title="T"),
                    sparse=SparseVector(indices=(1,), values=(1.0,)),
                )
                for n, chunk_id in enumerate(ids)
            ])
            await index.delete(ids[:10])
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush of our own

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await asyncio.wait_for(child.wait(), timeout=60) == -9
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        assert await index.count() == 40  # new shards have no write-ahead log: flushes carry it
    finally:
        await index.close()


async def _dense_datatype_after_a_search(path: Path) -> str | None:
    """Open the index at ``path``, check that dense search finds the nearer of two
    chunks, and return the dense vectors' stored datatype."""
    index = EdgeIndex.open(path, "docs")
    try:
        await index.prepare(4)
        await index.upsert([_chunk(0, dense=(1.0, 0, 0, 0)), _chunk(1, dense=(0, 1.0, 0, 0))])
        found = await index.search(_query(dense=(0.0, 0.9, 0.1, 0.0)))
        assert found[0].chunk.ordinal == 1
    finally:
        await index.close()
    config = json.loads((path / "docs" / "edge_config.json").read_text())
    datatype: str | None = config["vectors"]["dense"].get("datatype")
    return datatype


async def test_new_shards_keep_dense_vectors_in_float16_and_float32_ones_still_open(
    tmp_path: Path,
) -> None:
    """Float16 halves the vectors' memory (bench P7); shards made before keep float32."""
    assert await _dense_datatype_after_a_search(tmp_path / "new") == "float16"
    EdgeShard.create(
        str(tmp_path / "old" / "docs"),
        EdgeConfig(
            vectors={"dense": EdgeVectorParams(size=4, distance=Distance.Cosine)},
            sparse_vectors={"lexical": EdgeSparseVectorParams(modifier=Modifier.Idf)},
        ),
    ).close()
    assert await _dense_datatype_after_a_search(tmp_path / "old") in (None, "float32")


async def test_concurrent_searches_keep_their_own_answers(lexical: EdgeIndex) -> None:
    await lexical.upsert([_chunk(n, terms=(n % 5 + 1, 9)) for n in range(25)])
    queries = [_query(t) for t in (1, 2, 3, 4, 5) * 6]  # 5 equal hits each: compare sets
    alone = [sorted(p.chunk.id for p in await lexical.search(q)) for q in queries]
    assert all(len(ids) == 5 for ids in alone)
    together = await asyncio.gather(*(lexical.search(q) for q in queries))
    assert [sorted(p.chunk.id for p in found) for found in together] == alone


async def test_a_shard_created_with_a_write_ahead_log_still_opens(tmp_path: Path) -> None:
    """Shards made before the WAL was turned off keep theirs (the engine fixes it at creation)."""
    shard = EdgeShard.create(
        str(tmp_path / "docs"),
        EdgeConfig(
            vectors={},
            sparse_vectors={"lexical": EdgeSparseVectorParams(modifier=Modifier.Idf)},
            wal_enabled=True,
        ),
    )
    shard.close()
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        await index.prepare(None)
        await index.upsert([_chunk(n) for n in range(3)])
        assert await index.count() == 3
    finally:
        await index.close()


async def test_lexical_shard_asked_for_dense_is_a_mismatch_naming_both(lexical: EdgeIndex) -> None:
    with pytest.raises(IndexMismatch, match=r"lexical only.*dimension 384.*re-index"):
        await lexical.prepare(384)


async def test_foreign_layout_is_a_mismatch(tmp_path: Path) -> None:
    config = EdgeConfig(vectors={"dense": EdgeVectorParams(size=4, distance=Distance.Dot)})
    EdgeShard.create(str(tmp_path / "docs"), config).close()
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        with pytest.raises(IndexMismatch, match="not created by this adapter"):
            await index.prepare(4)
    finally:
        await index.close()


async def test_use_before_the_collection_exists_is_a_mismatch(tmp_path: Path) -> None:
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        await index.probe()  # the folder answers even before prepare
        with pytest.raises(IndexMismatch, match="not found"):
            await index.search(_query(1))
        with pytest.raises(IndexMismatch, match="not found"):
            await index.upsert([_chunk(0)])
    finally:
        await index.close()


# --- ids, compaction, closing, errors ---


async def test_non_canonical_chunk_id_is_invalid_input(lexical: EdgeIndex) -> None:
    item = _chunk(0)
    for bad in (item.chunk.id.upper(), "not-a-uuid"):
        with pytest.raises(InvalidInput):
            await lexical.upsert([attrs.evolve(item, chunk=attrs.evolve(item.chunk, id=bad))])
    await lexical.delete(["not-a-uuid"])  # unknown, so ignored
    assert await lexical.count() == 0


async def test_upsert_batches_and_scroll_pages(
    lexical: EdgeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge_index, "UPSERT_BATCH", 3)
    monkeypatch.setattr(edge_index, "SCROLL_PAGE", 2)
    chunks = [_chunk(n, document_id=f"docs/{n % 3}.md") for n in range(10)]
    await lexical.upsert(chunks)
    assert await lexical.count() == 10
    assert await lexical.chunk_ids_by_document() == {
        f"docs/{d}.md": frozenset(
            c.chunk.id for c in chunks if c.chunk.document_id == f"docs/{d}.md"
        )
        for d in range(3)
    }


async def test_compact_makes_idf_count_only_live_chunks(lexical: EdgeIndex) -> None:
    await lexical.upsert([_chunk(n, (1, 2) if n < 6 else (1,)) for n in range(10)])
    await lexical.delete([_chunk(n).chunk.id for n in range(5)])
    rare = _query(2, limit=1)
    [stale] = await lexical.search(rare)
    assert stale.score == pytest.approx(idf(10, 6), rel=1e-5)  # deleted points still count
    assert await lexical.compact() is True
    [exact] = await lexical.search(rare)
    assert exact.score == pytest.approx(idf(5, 1), rel=1e-5)
    assert await lexical.compact() is False
    assert await lexical.count() == 5


async def test_searches_wait_on_the_loop_while_compacting(lexical: EdgeIndex) -> None:
    await lexical.upsert([_chunk(n) for n in range(200)])
    await lexical.delete([_chunk(n).chunk.id for n in range(100)])
    writes_before = lexical._calls.writes
    compacting = asyncio.create_task(lexical.compact())
    await asyncio.sleep(0)  # it now holds reads back
    seen: list[int] = []
    searching = asyncio.create_task(lexical.search(_query(1)))
    # the search ran once the engine was done compacting (a finished write counts)
    searching.add_done_callback(lambda _: seen.append(lexical._calls.writes))
    assert len(await searching) == 8 and await compacting is True
    assert seen == [writes_before + 1]


async def test_a_cancelled_write_never_overtakes_the_next(lexical: EdgeIndex) -> None:
    old, new = _chunk(0), _chunk(0)
    new = attrs.evolve(new, chunk=attrs.evolve(new.chunk, text="new"))
    first = asyncio.create_task(lexical.upsert([old]))
    await asyncio.sleep(0)  # let it hand the write to its worker
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await lexical.upsert([new])
    assert [p.chunk.text for p in await lexical.search(_query(1))] == ["new"]


async def test_closed_index_is_unavailable(tmp_path: Path) -> None:
    index = EdgeIndex.open(tmp_path, "docs")
    await index.prepare(None)
    await index.close()
    for call in (index.probe(), index.count(), index.search(_query(1))):
        with pytest.raises(DependencyUnavailable, match="closed"):
            await call


async def test_unreadable_shard_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "garbage").write_text("not a shard")
    index = EdgeIndex.open(tmp_path, "docs")
    try:
        with pytest.raises(DependencyUnavailable) as caught:
            await index.count()
    finally:
        await index.close()
    assert caught.value.dependency == "qdrant"
    assert caught.value.reason == "Exception"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (Exception("Service runtime error: Can't init WAL: Kind(WouldBlock)"), IndexLocked),
        (Exception("Vector dimension error: expected dim: 4, got 3"), IndexMismatch),
        (Exception("Not existing vector name error: dense"), IndexMismatch),
        (ValueError("failed to parse x as UUID"), IndexMismatch),
        (Exception("Service runtime error: No space left on device"), DependencyUnavailable),
    ],
)
def test_engine_errors_are_translated(raised: Exception, expected: type[Exception]) -> None:
    assert type(translate(raised, Path("/data/docs"))) is expected


# --- the event loop keeps running ---


async def test_writes_and_scrolls_leave_the_loop_running_and_a_search_takes_no_turn_of_it(
    lexical: EdgeIndex,
) -> None:
    rng = random.Random(7)
    chunks = [_chunk(n, tuple(sorted(rng.sample(range(500), 20)))) for n in range(3000)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    try:
        before = ticks
        await lexical.upsert(chunks)
        during_upsert = ticks - before
        before = ticks
        everything = await lexical.chunks()
        during_scroll = ticks - before
        before = ticks
        hits = await lexical.search(_query(1, 2))
        during_search = ticks - before
    finally:
        running.cancel()
    assert len(everything) == 3000 and len(hits) == 8
    # Off the loop, a write or a scroll lets the ticker in; a search runs in its caller's
    # own step: no hand-off to a thread or a batching task, so no turn of the loop.
    assert during_upsert >= 1 and during_scroll >= 1
    assert during_search == 0
