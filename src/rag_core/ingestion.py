"""Incremental ingestion: documents in, the index brought up to date.

Each document is chunked and its chunk-id set compared with what the index
holds for it. Chunk ids derive from content, so an unchanged document costs no
encoding, no embedding and no write; a changed one writes only its new chunks,
then deletes its stale ones (upsert before delete: a document never vanishes
mid-update). Work is flushed in waves, so batches span documents and memory
stays bounded on a large corpus.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import attrs

from rag_core.chunking import Chunker
from rag_core.concurrency import bounded_gather
from rag_core.documents import Chunk, Document, IndexedChunk
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.ports import Embedder, SparseEncoder, VectorIndex

__all__ = ["IngestReport", "Ingestor", "indexed_text"]

T = TypeVar("T")


@attrs.frozen(slots=True)
class IngestReport:
    """What an ingestion run did. ``embedding_calls`` counts ``embed()`` calls.

    Every given document is counted once as added, changed or unchanged;
    ``documents_empty`` counts, among them, those with nothing to index (empty or
    headings only): such a document is never stored, so it counts as added (with no
    chunks) on every run, or as changed when it had chunks before. Fields are only
    ever appended, so positional construction and JSON readers keep working.
    """

    documents_added: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    embedding_calls: int = 0
    documents_empty: int = 0


def indexed_text(chunk: Chunk) -> str:
    """The text that is encoded and embedded for a chunk: its breadcrumb, then its text."""
    return f"{chunk.breadcrumb}\n{chunk.text}"


class Ingestor:
    """Brings a VectorIndex up to date with a set of documents.

    ``batch_size`` texts go to each ``embed()`` call, with at most
    ``max_concurrency`` calls in flight; upserts and deletes go out in batches
    of ``write_batch_size``. Raises ValueError for a setting below 1.
    """

    def __init__(
        self,
        index: VectorIndex,
        encoder: SparseEncoder,
        chunker: Chunker,
        embedder: Embedder | None = None,
        *,
        batch_size: int = 64,
        max_concurrency: int = 4,
        write_batch_size: int = 256,
    ) -> None:
        if min(batch_size, max_concurrency, write_batch_size) < 1:
            raise ValueError("batch_size, max_concurrency and write_batch_size must be >= 1")
        self._index = index
        self._encoder = encoder
        self._chunker = chunker
        self._embedder = embedder
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._write_batch_size = write_batch_size

    async def ingest(
        self,
        documents: Iterable[Document],
        *,
        scope: str | None = None,
        source: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IngestReport:
        """Index ``documents`` incrementally and report what changed.

        ``scope`` None prunes nothing; a string removes every stored document
        whose id starts with it (``""``: all) and that is not among
        ``documents``. ``source`` (a folder's identity) is stored with the chunks
        and removes every stored document of that source that is not among
        ``documents``, whatever its id: two folders both named ``docs`` do not
        prune each other. ``progress(done, total)`` is called after each document.
        A document with no chunks that was never stored counts as added (and empty).

        Raises InvalidInput for duplicate document ids (before touching the
        index), IndexMismatch from ``prepare``, DependencyUnavailable from the
        index or the embedder; documents flushed before a failure stay
        consistent, and a rerun picks up the rest.
        """
        docs = list(documents)
        given: set[str] = set()
        duplicates: set[str] = set()
        for doc in docs:
            (duplicates if doc.id in given else given).add(doc.id)
        if duplicates:
            raise InvalidInput(f"duplicate document ids: {', '.join(sorted(duplicates)[:5])}")

        await self._index.prepare(self._embedder.dimension if self._embedder else None)
        stored = await self._index.chunk_ids_by_document()
        owned = stored if source is None else await self._index.chunk_ids_by_document(source)
        run = _Run(total=len(docs), progress=progress)
        wave = max(self._batch_size * self._max_concurrency, self._write_batch_size)
        for doc in docs:
            chunks = self._chunker.split(doc)
            if source is not None:
                chunks = [attrs.evolve(chunk, source=source) for chunk in chunks]
            old = stored.get(doc.id, frozenset())
            new_ids = {chunk.id for chunk in chunks}
            same_source = doc.id in owned or not old
            if not chunks:
                run.empty += 1
            if old and new_ids == old and same_source:
                run.unchanged += 1
                run.advance(1)
                continue
            # A document taken over from another source is rewritten whole (new owner).
            run.to_write.extend(c for c in chunks if c.id not in old or not same_source)
            run.to_delete.extend(sorted(old - new_ids))
            run.pending_documents += 1
            if doc.id in stored:
                run.changed += 1
            else:
                run.added += 1
            if len(run.to_write) >= wave:
                await self._flush(run)
        await self._flush(run)

        if scope is not None or source is not None:
            candidates = owned if source is not None else stored
            gone = sorted(
                d for d in candidates if d not in given and (scope is None or d.startswith(scope))
            )
            await self._delete(run, [chunk_id for d in gone for chunk_id in sorted(stored[d])])
            run.removed = len(gone)
        return run.report()

    async def reembed(self, chunks: Sequence[Chunk]) -> int:
        """Lay the index out anew for this ingestor's embedder (``recreate``) and write
        ``chunks`` again, sparse re-encoded and dense re-embedded: what changing the
        embedder needs, without the source folders. Returns the embed() calls made.

        The index holds none of ``chunks`` between ``recreate`` and the last write:
        the caller keeps them (durably) until this returns.
        """
        await self._index.recreate(self._embedder.dimension if self._embedder else None)
        calls = 0
        for start in range(0, len(chunks), self._write_batch_size):
            calls += await self._write(chunks[start : start + self._write_batch_size])
        return calls

    async def _flush(self, run: _Run) -> None:
        """Write the pending chunks, then delete the pending stale ids."""
        writes, deletes = run.to_write, run.to_delete
        run.to_write, run.to_delete = [], []
        if writes:
            run.embedding_calls += await self._write(writes)
            run.written += len(writes)
        await self._delete(run, deletes)
        run.advance(run.pending_documents)
        run.pending_documents = 0

    async def _write(self, chunks: Sequence[Chunk]) -> int:
        """Encode, embed and upsert ``chunks``; returns how many embed() calls were made."""
        texts = [indexed_text(chunk) for chunk in chunks]
        sparse = [self._encoder.encode_document(c.text, heading=c.breadcrumb) for c in chunks]
        dense: list[tuple[float, ...] | None] = [None] * len(chunks)
        calls = 0
        if self._embedder is not None:
            size = self._batch_size
            batches = [texts[i : i + size] for i in range(0, len(texts), size)]
            results = await bounded_gather(
                [functools.partial(self._embed, self._embedder, batch) for batch in batches],
                self._max_concurrency,
            )
            dense = [vector for result in results for vector in result]
            calls = len(batches)
        items = [
            IndexedChunk(chunk=chunk, sparse=vector, dense=embedding)
            for chunk, vector, embedding in zip(chunks, sparse, dense, strict=True)
        ]
        size = self._write_batch_size
        for i in range(0, len(items), size):
            await self._index.upsert(items[i : i + size])
        return calls

    async def _delete(self, run: _Run, chunk_ids: list[str]) -> None:
        size = self._write_batch_size
        for i in range(0, len(chunk_ids), size):
            await self._index.delete(chunk_ids[i : i + size])
        run.deleted += len(chunk_ids)

    @staticmethod
    async def _embed(embedder: Embedder, texts: list[str]) -> list[tuple[float, ...]]:
        vectors = await embedder.embed(texts)
        dimension = embedder.dimension
        if len(vectors) != len(texts) or any(len(v) != dimension for v in vectors):
            raise DependencyUnavailable(
                "embedder",
                f"returned {len(vectors)} vectors for {len(texts)} texts "
                f"(expected {len(texts)} of dimension {dimension})",
            )
        return vectors


@attrs.define
class _Run:
    """The mutable state of one ingest() call: pending work and counters."""

    total: int
    progress: Callable[[int, int], None] | None
    done: int = 0
    pending_documents: int = 0
    to_write: list[Chunk] = attrs.field(factory=list)
    to_delete: list[str] = attrs.field(factory=list)
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    written: int = 0
    deleted: int = 0
    embedding_calls: int = 0
    empty: int = 0

    def advance(self, documents: int) -> None:
        for _ in range(documents):
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)

    def report(self) -> IngestReport:
        return IngestReport(
            documents_added=self.added,
            documents_changed=self.changed,
            documents_unchanged=self.unchanged,
            documents_removed=self.removed,
            chunks_written=self.written,
            chunks_deleted=self.deleted,
            embedding_calls=self.embedding_calls,
            documents_empty=self.empty,
        )
