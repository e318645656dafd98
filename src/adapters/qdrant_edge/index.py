"""The VectorIndex port on Qdrant Edge: Qdrant's Rust engine in-process, on a folder."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qdrant_edge import (
    CountRequest,
    EdgeShard,
    Filter,
    PayloadSchemaType,
    Record,
    ScrollRequest,
    UpdateOperation,
)

from adapters import qdrant_layout as layout
from adapters.qdrant_edge import config, records
from adapters.qdrant_edge.calls import EngineCalls
from adapters.qdrant_edge.shard import ShardHolder
from adapters.span_cache import Span, SpanCache
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import DependencyUnavailable
from rag_core.ports import SearchQuery

if TYPE_CHECKING:
    from qdrant_edge import PointId  # an alias in the stubs only

UPSERT_BATCH = 256
SCROLL_PAGE = 1000


class EdgeIndex:
    """A :class:`~rag_core.ports.VectorIndex` in a Qdrant Edge shard at ``path/collection``.

    Layout and ``prepare`` rules are QdrantIndex's (see :mod:`adapters.qdrant_layout`):
    ``prepare(None)`` on a dense shard is allowed (search goes on lexically); any
    other dimension difference, or a shard this adapter did not lay out, raises
    IndexMismatch. Keyword payload indexes on ``document_id`` and ``section`` are
    created by ``prepare``; no HNSW is ever built (exact search, see ``edge_config``).

    One process, one holder: :meth:`open` locks the folder and raises IndexLocked if
    another process or object holds it. Searches and neighbourhoods run on the event
    loop, in the caller's own step (the engine keeps the GIL for them anyway), scrolls
    of every chunk on a reader thread, writes on a writer thread, in order, so
    searches never wait for a write (:class:`~adapters.qdrant_edge.calls.EngineCalls`).
    The neighbourhoods read are kept until the next write
    (:class:`~adapters.span_cache.SpanCache`).

    Durability: ``upsert`` and ``delete`` return after the shard is flushed to
    disk, so an acknowledged write survives a
    crash of the process or of the machine. Deleted points still count in the IDF
    statistics until :meth:`compact` vacuums them.

    Errors: engine failures raise DependencyUnavailable("qdrant", <class name>);
    requests the shard's layout rejects raise IndexMismatch; a non-canonical UUID
    chunk id raises InvalidInput. Calls have no timeout: the engine is in-process.
    """

    def __init__(self, holder: ShardHolder) -> None:
        self._holder = holder
        self._calls = EngineCalls(holder.dir)
        self._neighbourhoods = SpanCache()
        self._prepared = False
        self._dense_dimension: int | None = None

    @classmethod
    def open(cls, path: Path, collection: str) -> EdgeIndex:
        """The index of ``collection`` under ``path``; raises IndexLocked if it is held.

        Cheap: takes the folder lock; the shard is loaded on first use, off the loop.
        """
        return cls(ShardHolder.acquire(path, collection))

    @property
    def path(self) -> Path:
        """The shard's folder."""
        return self._holder.dir

    @property
    def collection(self) -> str:
        return self._holder.collection

    async def prepare(self, dense_dimension: int | None) -> None:
        holder = self._holder
        shard = await self._calls.write(lambda: holder.loaded(create=True, dense=dense_dimension))
        existing = await self._calls.read(
            lambda: config.stored_dense_dimension(holder.dir, holder.collection)
        )
        if existing != dense_dimension and dense_dimension is not None:
            raise layout.dimension_mismatch(
                self._where, existing, dense_dimension, f"delete {holder.dir} and ingest again"
            )

        def index_payload() -> None:
            indexed = shard.info().payload_schema
            for field in layout.KEYWORD_FIELDS:
                if field not in indexed:
                    shard.update(
                        UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword)
                    )
            shard.flush()

        await self._calls.write(index_payload)
        self._prepared = True
        self._dense_dimension = dense_dimension

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        for item in chunks:
            layout.check_id(item.chunk.id)
            if item.dense is not None and self._prepared:
                layout.check_dense(len(item.dense), self._dense_dimension, self._where)
        if not chunks:
            return

        def write() -> None:
            shard = self._holder.loaded()
            for start in range(0, len(chunks), UPSERT_BATCH):
                batch = [records.point(item) for item in chunks[start : start + UPSERT_BATCH]]
                shard.update(UpdateOperation.upsert_points(batch))
            shard.flush()

        await self._calls.write(write)

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        # An id that is not a canonical UUID cannot be stored, so it is unknown: ignored.
        ids: list[PointId] = [c for c in chunk_ids if layout.is_canonical_uuid(c)]
        if not ids:
            return

        def write() -> None:
            shard = self._holder.loaded()
            shard.update(UpdateOperation.delete_points(ids))
            shard.flush()

        await self._calls.write(write)

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        shard = await self._ready()
        where = records.payload_filter(layout.source_match(source))

        def scroll() -> dict[str, frozenset[str]]:
            grouped = layout.DocumentChunkIds()
            for page in _pages(shard, where, with_payload=[layout.DOCUMENT_ID]):
                grouped.add(page)
            return grouped.result()

        return await self._calls.read(scroll)

    async def search(self, query: SearchQuery) -> list[Passage]:
        if query.dense is not None and self._prepared:
            layout.check_dense(len(query.dense), self._dense_dimension, self._where)
        if query.limit < 1 or (query.dense is None and not query.sparse.indices):
            return []
        request = records.search_request(query)
        shard = await self._ready()

        def run() -> list[Passage]:
            hits = shard.query(request)
            return [records.passage(hit, rank) for rank, hit in enumerate(hits, start=1)]

        return await self._calls.inline(run)

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        if document_ids is not None and not document_ids:
            return []
        shard = await self._ready()
        where = records.documents_filter(document_ids)

        def scroll() -> list[Chunk]:
            pages = _pages(shard, where, with_payload=True)
            return [layout.chunk(record) for page in pages for record in page]

        return await self._calls.read(scroll)

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        if not spans:
            return []
        shard = await self._ready()
        writes = self._calls.writes

        async def fetch(wanted: list[Span]) -> tuple[list[Chunk], int]:
            where = records.spans_filter(wanted)

            def scroll() -> list[Chunk]:
                pages = _pages(shard, where, with_payload=True)
                return [layout.chunk(record) for page in pages for record in page]

            return await self._calls.inline(scroll), writes

        return await self._neighbourhoods.read(spans, writes, fetch)

    async def recreate(self, dense_dimension: int | None) -> None:
        await self._calls.exclusive(self._holder.drop)
        self._prepared = False
        await self.prepare(dense_dimension)

    async def count(self) -> int:
        shard = await self._ready()
        return await self._calls.read(lambda: shard.count(CountRequest(exact=True)))

    async def probe(self) -> None:
        def check() -> None:
            shard = self._holder.current
            if shard is not None:
                shard.info()
            elif not self.path.parent.is_dir():
                raise DependencyUnavailable("qdrant", f"index folder {self.path.parent} is gone")

        await self._calls.read(check)

    async def compact(self) -> bool:
        """Vacuum deleted points (IDF then counts live chunks only); never builds HNSW.

        Searches wait, on the event loop, until it is done: 0.3 s at 10k chunks x 384,
        1.4 s at 50k x 1536 after a 20% turnover (measured). Returns whether anything
        changed (False, instantly, when nothing was deleted). Run it after an ingest.
        """

        def run() -> bool:
            shard = self._holder.loaded()
            changed = shard.optimize()
            shard.flush()
            return changed

        return await self._calls.exclusive(run)

    async def close(self) -> None:
        """Flush and close the shard, then release the folder (idempotent)."""
        try:
            await self._calls.write(self._holder.close)
        except DependencyUnavailable:
            if not self._holder.closed:
                raise  # else: closed already, and the threads are gone
        finally:
            if self._holder.closed:
                self._calls.shutdown()

    @property
    def _where(self) -> str:
        return f"Qdrant Edge collection '{self.collection}'"

    async def _ready(self) -> EdgeShard:
        """The loaded shard, loading it (on the writer thread) on first use."""
        shard = self._holder.current
        if shard is None:
            shard = await self._calls.write(self._holder.loaded)
        return shard


def _pages(
    shard: EdgeShard, where: Filter | None, with_payload: bool | list[str]
) -> Iterator[list[Record]]:
    """Every point ``where`` selects, page by page, without vectors (engine calls: run
    on an engine thread)."""
    offset: PointId | None = None
    while True:
        page, offset = shard.scroll(
            ScrollRequest(
                offset=offset,
                filter=where,
                limit=SCROLL_PAGE,
                with_payload=with_payload,
                with_vector=False,
            )
        )
        yield page
        if offset is None:
            return
