"""An in-memory VectorIndex: the same contract as the Qdrant adapter, for tests
and for projects that embed the core. Brute force; fine for thousands of chunks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import IndexMismatch
from rag_core.fusion import cosine, idf, reciprocal_rank_fusion
from rag_core.ports import SearchQuery


class InMemoryIndex:
    def __init__(self) -> None:
        self._chunks: dict[str, IndexedChunk] = {}
        self._document_frequency: Counter[int] = Counter()
        self._dense_dimension: int | None = None  # the layout the index was created with
        self._prepared = False

    async def prepare(self, dense_dimension: int | None) -> None:
        # prepare(None) on a dense index is allowed: the embedder was removed and
        # search goes on lexically.
        if self._prepared:
            if dense_dimension is not None and dense_dimension != self._dense_dimension:
                raise IndexMismatch(
                    f"index holds dense dimension {self._dense_dimension}, asked for {dense_dimension}"
                )
            return
        self._dense_dimension = dense_dimension
        self._prepared = True

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        for item in chunks:
            if item.dense is not None and len(item.dense) != self._dense_dimension:
                raise IndexMismatch(
                    f"vector of dimension {len(item.dense)}, index has {self._dense_dimension}"
                )
        for item in chunks:
            self._remove(item.chunk.id)
            self._chunks[item.chunk.id] = item
            self._document_frequency.update(set(item.sparse.indices))

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        for chunk_id in chunk_ids:
            self._remove(chunk_id)

    def _remove(self, chunk_id: str) -> None:
        old = self._chunks.pop(chunk_id, None)
        if old is not None:
            self._document_frequency.subtract(set(old.sparse.indices))

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        grouped: dict[str, set[str]] = {}
        for chunk_id, item in self._chunks.items():
            if source is None or item.chunk.source == source:
                grouped.setdefault(item.chunk.document_id, set()).add(chunk_id)
        return {doc: frozenset(ids) for doc, ids in grouped.items()}

    async def search(self, query: SearchQuery) -> list[Passage]:
        candidates = [item for item in self._chunks.values() if _matches(item, query.filters)]
        total = len(self._chunks)
        weights = dict(zip(query.sparse.indices, query.sparse.values, strict=True))
        lexical: list[tuple[float, str]] = []
        for item in candidates:
            score = sum(
                weights[term] * value * idf(total, self._document_frequency[term])
                for term, value in zip(item.sparse.indices, item.sparse.values, strict=True)
                if term in weights
            )
            if score > 0:
                lexical.append((score, item.chunk.id))
        lexical.sort(key=lambda pair: (-pair[0], pair[1]))
        lexical = lexical[: query.limit]
        if query.dense is None:
            ranked = [(chunk_id, score) for score, chunk_id in lexical]
        else:
            dense = sorted(
                (
                    (cosine(query.dense, item.dense), item.chunk.id)
                    for item in candidates
                    if item.dense
                ),
                key=lambda pair: (-pair[0], pair[1]),
            )[: query.limit]
            ranked = reciprocal_rank_fusion([[c for _, c in lexical], [c for _, c in dense]])[
                : query.limit
            ]
        return [
            Passage(chunk=self._chunks[chunk_id].chunk, score=score, rank=rank)
            for rank, (chunk_id, score) in enumerate(ranked, start=1)
        ]

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        wanted = None if document_ids is None else set(document_ids)
        return [
            item.chunk
            for item in self._chunks.values()
            if wanted is None or item.chunk.document_id in wanted
        ]

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        return [
            item.chunk
            for item in self._chunks.values()
            if any(
                item.chunk.document_id == document and first <= item.chunk.ordinal <= last
                for document, first, last in spans
            )
        ]

    async def recreate(self, dense_dimension: int | None) -> None:
        self._chunks.clear()
        self._document_frequency.clear()
        self._dense_dimension = dense_dimension
        self._prepared = True

    async def count(self) -> int:
        return len(self._chunks)

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _matches(item: IndexedChunk, filters: Mapping[str, str]) -> bool:
    chunk = item.chunk
    fields = {"document_id": chunk.document_id, "section": chunk.section}
    return all(fields.get(key) == value for key, value in filters.items())
