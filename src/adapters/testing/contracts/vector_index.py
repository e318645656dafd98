"""The VectorIndex contract: every adapter runs this same suite
(this project's: tests/contract/test_vector_index.py).

Sparse vectors are built by hand (term ids as ints) so the expected BM25 scores
can be computed with the domain's own ``idf``.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import IndexMismatch
from rag_core.fusion import idf
from rag_core.ports import SearchQuery, VectorIndex


def chunk_id(name: str) -> str:
    """A stable UUID string per test name, as ingestion derives ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def indexed(
    name: str,
    terms: dict[int, float],
    *,
    document_id: str = "docs/a.md",
    section: str = "docs",
    text: str | None = None,
    dense: tuple[float, ...] | None = None,
    ordinal: int = 0,
    source: str = "",
) -> IndexedChunk:
    chunk = Chunk(
        id=chunk_id(name),
        document_id=document_id,
        ordinal=ordinal,
        text=text if text is not None else f"text of {name}",
        heading_path=("Intro", f"Heading {name}"),
        content_hash=f"hash-{name}",
        route=f"/{document_id.removesuffix('.md')}",
        title=f"Title {document_id}",
        section=section,
        source=source,
    )
    sparse = SparseVector(indices=tuple(terms), values=tuple(terms.values()))
    return IndexedChunk(chunk=chunk, sparse=sparse, dense=dense)


def query(terms: dict[int, float], **kwargs: object) -> SearchQuery:
    sparse = SparseVector(indices=tuple(terms), values=tuple(terms.values()))
    return SearchQuery(sparse=sparse, **kwargs)  # type: ignore[arg-type]


class VectorIndexContract(abc.ABC):
    """Subclass per adapter as ``Test...`` and implement ``make_index``."""

    @abc.abstractmethod
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        """A fresh, empty, not yet prepared index."""

    @pytest.fixture
    async def index(self, tmp_path: Path) -> AsyncIterator[VectorIndex]:
        index = await self.make_index(tmp_path)
        yield index
        await index.close()

    @pytest.fixture
    async def lexical(self, index: VectorIndex) -> VectorIndex:
        await index.prepare(None)
        return index

    async def test_prepare_is_idempotent(self, index: VectorIndex) -> None:
        await index.prepare(None)
        await index.upsert([indexed("a", {1: 1.0})])
        await index.prepare(None)
        assert await index.count() == 1

    async def test_upsert_then_count(self, lexical: VectorIndex) -> None:
        assert await lexical.count() == 0
        await lexical.upsert([indexed(n, {1: 1.0}) for n in "abc"])
        assert await lexical.count() == 3

    async def test_upsert_same_id_replaces(self, lexical: VectorIndex) -> None:
        await lexical.upsert([indexed("a", {1: 1.0}, text="old"), indexed("b", {2: 1.0})])
        await lexical.upsert([indexed("a", {1: 1.0}, text="new")])
        assert await lexical.count() == 2
        [hit] = await lexical.search(query({1: 1.0}))
        assert hit.chunk.text == "new"

    async def test_delete_ignores_unknown_ids(self, lexical: VectorIndex) -> None:
        await lexical.upsert([indexed("a", {1: 1.0}), indexed("b", {1: 1.0})])
        await lexical.delete([chunk_id("a"), chunk_id("never stored")])
        await lexical.delete([])
        assert await lexical.count() == 1
        assert [p.chunk.id for p in await lexical.search(query({1: 1.0}))] == [chunk_id("b")]

    async def test_chunk_ids_grouped_by_document(self, lexical: VectorIndex) -> None:
        await lexical.upsert(
            [
                indexed("a1", {1: 1.0}, document_id="docs/a.md"),
                indexed("a2", {1: 1.0}, document_id="docs/a.md", ordinal=1),
                indexed("b1", {1: 1.0}, document_id="docs/b.md"),
            ]
        )
        assert await lexical.chunk_ids_by_document() == {
            "docs/a.md": frozenset({chunk_id("a1"), chunk_id("a2")}),
            "docs/b.md": frozenset({chunk_id("b1")}),
        }

    async def test_chunk_ids_of_one_source(self, lexical: VectorIndex) -> None:
        await lexical.upsert(
            [
                indexed("a1", {1: 1.0}, document_id="docs/a.md", source="/book/docs"),
                indexed("b1", {1: 1.0}, document_id="docs/b.md", source="/project/docs"),
                indexed("c1", {1: 1.0}, document_id="docs/c.md"),
            ]
        )
        assert await lexical.chunk_ids_by_document("/book/docs") == {
            "docs/a.md": frozenset({chunk_id("a1")})
        }
        assert await lexical.chunk_ids_by_document("/elsewhere") == {}
        assert len(await lexical.chunk_ids_by_document()) == 3

    async def test_empty_index_chunk_ids(self, lexical: VectorIndex) -> None:
        assert await lexical.chunk_ids_by_document() == {}

    async def test_rare_term_outranks_common_term_bm25_idf(self, lexical: VectorIndex) -> None:
        # term 1 is in 4 of 5 chunks, term 2 in one: a match on 2 is worth more.
        await lexical.upsert(
            [
                indexed("common", {1: 1.0}),
                indexed("rare", {2: 1.0}),
                indexed("filler1", {1: 0.5, 3: 1.0}),
                indexed("filler2", {1: 0.5, 4: 1.0}),
                indexed("filler3", {1: 0.5, 5: 1.0}),
            ]
        )
        hits = await lexical.search(query({1: 1.0, 2: 1.0}, limit=5))
        assert [p.chunk.id for p in hits[:2]] == [chunk_id("rare"), chunk_id("common")]
        assert hits[0].score == pytest.approx(idf(5, 1), rel=1e-5)
        assert hits[1].score == pytest.approx(idf(5, 4), rel=1e-5)
        assert hits[2].score == pytest.approx(0.5 * idf(5, 4), rel=1e-5)

    async def test_chunks_sharing_no_term_are_not_returned(self, lexical: VectorIndex) -> None:
        await lexical.upsert([indexed("a", {1: 1.0}), indexed("b", {2: 1.0})])
        assert [p.chunk.id for p in await lexical.search(query({1: 1.0}))] == [chunk_id("a")]
        assert await lexical.search(query({9: 1.0})) == []

    async def test_limit_and_ranks(self, lexical: VectorIndex) -> None:
        await lexical.upsert([indexed(f"c{i}", {1: 1.0 + i, 2: 1.0}) for i in range(10)])
        hits = await lexical.search(query({1: 1.0}, limit=3))
        assert [p.rank for p in hits] == [1, 2, 3]
        assert [p.chunk.id for p in hits] == [chunk_id(f"c{i}") for i in (9, 8, 7)]
        assert hits[0].score >= hits[1].score >= hits[2].score

    async def test_filters(self, lexical: VectorIndex) -> None:
        await lexical.upsert(
            [
                indexed("a", {1: 1.0}, document_id="docs/w1/a.md", section="docs/w1"),
                indexed("b", {1: 1.0}, document_id="docs/w1/b.md", section="docs/w1"),
                indexed("c", {1: 1.0}, document_id="docs/w2/c.md", section="docs/w2"),
            ]
        )

        async def ids(**filters: str) -> set[str]:
            return {p.chunk.id for p in await lexical.search(query({1: 1.0}, filters=filters))}

        assert await ids(section="docs/w1") == {chunk_id("a"), chunk_id("b")}
        assert await ids(document_id="docs/w2/c.md") == {chunk_id("c")}
        assert await ids(section="docs/w1", document_id="docs/w2/c.md") == set()
        assert await ids(section="nowhere") == set()

    async def test_hybrid_fuses_a_dense_only_match(self, index: VectorIndex) -> None:
        await index.prepare(4)
        await index.upsert(
            [
                indexed("lexical", {1: 1.0}, dense=(0.0, 1.0, 0.0, 0.0)),
                indexed("semantic", {7: 1.0}, dense=(1.0, 0.0, 0.0, 0.0)),
                indexed("neither", {8: 1.0}, dense=(0.0, 0.0, 0.0, 1.0)),
            ]
        )
        hits = await index.search(query({1: 1.0}, dense=(1.0, 0.1, 0.0, 0.0), limit=2))
        assert {p.chunk.id for p in hits} == {chunk_id("lexical"), chunk_id("semantic")}
        assert [p.rank for p in hits] == [1, 2]
        # Lexically, the dense-only match is not found at all.
        lexical_hits = await index.search(query({1: 1.0}))
        assert [p.chunk.id for p in lexical_hits] == [chunk_id("lexical")]

    async def test_hybrid_with_empty_sparse_query_uses_dense(self, index: VectorIndex) -> None:
        await index.prepare(4)
        await index.upsert([indexed("a", {1: 1.0}, dense=(1.0, 0.0, 0.0, 0.0))])
        hits = await index.search(query({}, dense=(1.0, 0.0, 0.0, 0.0)))
        assert [p.chunk.id for p in hits] == [chunk_id("a")]

    async def test_other_dimension_is_a_mismatch(self, index: VectorIndex) -> None:
        await index.prepare(4)
        with pytest.raises(IndexMismatch):
            await index.prepare(8)

    async def test_lexical_index_asked_for_dense_is_a_mismatch(self, index: VectorIndex) -> None:
        await index.prepare(None)
        with pytest.raises(IndexMismatch):
            await index.prepare(4)

    async def test_dense_index_prepared_lexically_still_searches(self, index: VectorIndex) -> None:
        """The embedder was removed: lexical search and dense-less upserts keep working."""
        await index.prepare(4)
        await index.upsert([indexed("a", {1: 1.0}, dense=(1.0, 0.0, 0.0, 0.0))])
        await index.prepare(None)
        await index.upsert([indexed("b", {1: 1.0})])
        assert {p.chunk.id for p in await index.search(query({1: 1.0}))} == {
            chunk_id("a"),
            chunk_id("b"),
        }

    async def test_upsert_of_wrong_dimension_is_a_mismatch(self, index: VectorIndex) -> None:
        await index.prepare(4)
        with pytest.raises(IndexMismatch):
            await index.upsert([indexed("a", {1: 1.0}, dense=(1.0, 0.0, 0.0))])
        assert await index.count() == 0

    async def test_empty_index_and_empty_query_find_nothing(self, lexical: VectorIndex) -> None:
        assert await lexical.search(query({1: 1.0})) == []
        await lexical.upsert([indexed("a", {1: 1.0})])
        assert await lexical.search(query({})) == []

    async def test_chunks_round_trip_every_field(self, lexical: VectorIndex) -> None:
        original = indexed(
            "round trip",
            {1: 1.0},
            document_id="docs/week3/ros2-nodes.md",
            section="docs/week3",
            text="Nodes talk over topics — «unicode» too.\n\nSecond paragraph.",
            ordinal=7,
        )
        await lexical.upsert([original])
        [hit] = await lexical.search(query({1: 1.0}))
        assert hit.chunk == original.chunk
        assert isinstance(hit.chunk.heading_path, tuple)
        assert hit.rank == 1

    async def test_chunks_gives_back_every_stored_chunk(self, lexical: VectorIndex) -> None:
        stored = [indexed(name, {1: 1.0}, document_id=f"docs/{name}.md") for name in "abc"]
        await lexical.upsert(stored)
        await lexical.delete([chunk_id("b")])
        chunks = sorted(await lexical.chunks(), key=lambda c: c.id)
        assert chunks == sorted((stored[0].chunk, stored[2].chunk), key=lambda c: c.id)

    async def test_neighbourhood_gives_the_chunks_in_each_span(self, lexical: VectorIndex) -> None:
        stored = [
            indexed(f"{doc}{n}", {1: 1.0}, document_id=f"docs/{doc}.md", ordinal=n)
            for doc in "ab"
            for n in range(6)
        ]
        await lexical.upsert(stored)
        spans = [("docs/a.md", 1, 3), ("docs/b.md", 4, 9), ("docs/none.md", 0, 5)]
        found = {(c.document_id, c.ordinal) for c in await lexical.neighbourhood(spans)}
        assert found == {("docs/a.md", n) for n in (1, 2, 3)} | {("docs/b.md", 4), ("docs/b.md", 5)}
        [chunk] = await lexical.neighbourhood([("docs/a.md", 2, 2)])
        assert chunk == stored[2].chunk
        assert await lexical.neighbourhood([]) == []

    async def test_neighbourhood_read_again_sees_every_write_and_no_repeats(
        self, lexical: VectorIndex
    ) -> None:
        stored = [indexed(f"a{n}", {1: 1.0}, document_id="docs/a.md", ordinal=n) for n in range(4)]
        await lexical.upsert(stored)
        spans = [("docs/a.md", 0, 2), ("docs/a.md", 1, 3), ("docs/a.md", 0, 2)]
        for _ in range(2):  # overlapping and repeated spans, read twice
            found = await lexical.neighbourhood(spans)
            assert sorted(c.ordinal for c in found) == [0, 1, 2, 3]
        changed = indexed("a1", {1: 1.0}, document_id="docs/a.md", ordinal=1, text="changed")
        await lexical.upsert([changed])
        await lexical.delete([stored[3].chunk.id])
        found = await lexical.neighbourhood(spans)
        assert sorted((c.ordinal, c.text) for c in found) == [
            (0, stored[0].chunk.text),
            (1, "changed"),
            (2, stored[2].chunk.text),
        ]
        await lexical.recreate(None)
        assert await lexical.neighbourhood(spans) == []

    async def test_recreate_drops_everything_and_lays_out_the_new_dimension(
        self, lexical: VectorIndex
    ) -> None:
        await lexical.upsert([indexed("a", {1: 1.0})])
        await lexical.recreate(4)
        assert await lexical.count() == 0
        assert await lexical.chunks() == []
        await lexical.upsert([indexed("b", {1: 1.0}, dense=(1.0, 0.0, 0.0, 0.0))])
        await lexical.prepare(4)  # now laid out for 4: no mismatch
        hits = await lexical.search(query({1: 1.0}, dense=(1.0, 0.0, 0.0, 0.0)))
        assert [h.chunk.id for h in hits] == [chunk_id("b")]
        with pytest.raises(IndexMismatch):
            await lexical.prepare(8)

    async def test_chunks_of_some_documents(self, lexical: VectorIndex) -> None:
        stored = [indexed(name, {1: 1.0}, document_id=f"docs/{name}.md") for name in "abc"]
        await lexical.upsert(stored)
        chunks = await lexical.chunks(["docs/a.md", "docs/c.md"])
        assert sorted(c.id for c in chunks) == sorted([chunk_id("a"), chunk_id("c")])
        assert await lexical.chunks([]) == []
