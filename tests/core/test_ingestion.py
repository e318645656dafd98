import asyncio
import hashlib
import math
import re
from collections.abc import Sequence

import pytest

from adapters.memory.index import InMemoryIndex
from rag_core.chunking import Chunker
from rag_core.documents import Document, IndexedChunk, SparseVector
from rag_core.errors import DependencyUnavailable, IndexMismatch, InvalidInput
from rag_core.ingestion import Ingestor, IngestReport, indexed_text


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


class FakeEncoder:
    """Term counts under hashed ids; deterministic."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode_document(self, text: str, heading: str = "") -> SparseVector:
        text = f"{heading}\n{text}" if heading else text
        self.encoded.append(text)
        counts: dict[int, float] = {}
        for word in re.findall(r"\w+", text.lower()):
            counts[_hash(word)] = counts.get(_hash(word), 0.0) + 1.0
        ordered = sorted(counts.items())
        return SparseVector(tuple(k for k, _ in ordered), tuple(v for _, v in ordered))

    def encode_query(self, text: str) -> SparseVector:
        return self.encode_document(text)


class FakeEmbedder:
    """Hash-derived unit vectors; counts calls and the most calls in flight at once."""

    def __init__(self, dimension: int = 8, *, broken: bool = False) -> None:
        self._dimension = dimension
        self._broken = broken
        self.calls: list[list[str]] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def model(self) -> str:
        return "fake-hash"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls.append(list(texts))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
        finally:
            self.in_flight -= 1
        vectors = [self._vector(text) for text in texts]
        return vectors[:-1] if self._broken else vectors

    def _vector(self, text: str) -> tuple[float, ...]:
        digest = hashlib.sha256(text.encode()).digest()
        raw = [digest[i] - 127.5 for i in range(self._dimension)]
        norm = math.sqrt(sum(x * x for x in raw))
        return tuple(x / norm for x in raw)


class RecordingIndex(InMemoryIndex):
    """The in-memory index, recording every write in order."""

    def __init__(self) -> None:
        super().__init__()
        self.operations: list[tuple[str, list[str]]] = []
        self.prepared_with: list[int | None] = []
        self.items: dict[str, IndexedChunk] = {}

    async def prepare(self, dense_dimension: int | None) -> None:
        self.prepared_with.append(dense_dimension)
        await super().prepare(dense_dimension)

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        self.operations.append(("upsert", [item.chunk.id for item in chunks]))
        await super().upsert(chunks)
        self.items.update((item.chunk.id, item) for item in chunks)

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        self.operations.append(("delete", list(chunk_ids)))
        await super().delete(chunk_ids)
        for chunk_id in chunk_ids:
            self.items.pop(chunk_id, None)


def page(document_id: str, *paragraphs: str) -> Document:
    body = "\n\n".join(["# Page", *paragraphs])
    return Document(
        id=document_id, route="/" + document_id.removesuffix(".md"), title="T", text=body
    )


def paragraphs(prefix: str, count: int) -> list[str]:
    return [f"{prefix} paragraph {i} " + "words about robots " * 8 for i in range(count)]


CHUNKER = Chunker(max_chars=200, overlap_chars=0)  # one chunk per paragraph


def make(
    index: RecordingIndex, embedder: FakeEmbedder | None = None, **settings: int
) -> tuple[Ingestor, FakeEncoder]:
    encoder = FakeEncoder()
    return Ingestor(index, encoder, CHUNKER, embedder, **settings), encoder


CORPUS = [
    page("docs/a.md", *paragraphs("alpha", 3)),
    page("docs/b.md", *paragraphs("beta", 2)),
    page("guides/c.md", *paragraphs("gamma", 2)),
]


async def test_first_ingest_adds_everything_with_vectors() -> None:
    index, embedder = RecordingIndex(), FakeEmbedder()
    ingestor, encoder = make(index, embedder)
    report = await ingestor.ingest(CORPUS)
    assert report == IngestReport(
        documents_added=3, chunks_written=7, embedding_calls=1, documents_changed=0
    )
    assert index.prepared_with == [8]
    assert await index.count() == 7
    for item in index.items.values():
        assert item.dense is not None and len(item.dense) == 8
        assert item.sparse == encoder.encode_document(indexed_text(item.chunk))
    vectors = {item.dense for item in index.items.values()}
    assert len(vectors) == 7  # hash-derived, not constant


async def test_encoded_and_embedded_text_is_breadcrumb_then_text() -> None:
    index, embedder = RecordingIndex(), FakeEmbedder()
    ingestor, encoder = make(index, embedder)
    await ingestor.ingest([page("docs/a.md", "Only paragraph.")])
    [item] = index.items.values()
    assert item.chunk.breadcrumb == "T > Page"
    assert embedder.calls == [["T > Page\nOnly paragraph."]]
    assert encoder.encoded == ["T > Page\nOnly paragraph."]


async def test_reingesting_the_same_documents_does_no_work() -> None:
    index, embedder = RecordingIndex(), FakeEmbedder()
    ingestor, encoder = make(index, embedder)
    await ingestor.ingest(CORPUS, scope="")
    operations, calls = len(index.operations), len(embedder.calls)
    encoder.encoded.clear()

    report = await ingestor.ingest(CORPUS, scope="")
    assert report == IngestReport(documents_unchanged=3)
    assert len(index.operations) == operations
    assert len(embedder.calls) == calls
    assert encoder.encoded == []


async def test_a_changed_document_writes_new_chunks_before_deleting_stale_ones() -> None:
    index, embedder = RecordingIndex(), FakeEmbedder()
    ingestor, _ = make(index, embedder)
    await ingestor.ingest(CORPUS)
    before = (await index.chunk_ids_by_document())["docs/a.md"]
    index.operations.clear()
    embedder.calls.clear()

    edited = page("docs/a.md", *paragraphs("alpha", 2), "A brand new closing paragraph.")
    report = await ingestor.ingest([edited, *CORPUS[1:]])

    after = (await index.chunk_ids_by_document())["docs/a.md"]
    assert report == IngestReport(
        documents_changed=1,
        documents_unchanged=2,
        chunks_written=1,
        chunks_deleted=1,
        embedding_calls=1,
    )
    assert len(before & after) == 2  # the untouched paragraphs kept their ids
    assert embedder.calls == [[indexed_text(c) for c in CHUNKER.split(edited)[2:]]]
    assert index.operations == [
        ("upsert", sorted(after - before)),
        ("delete", sorted(before - after)),
    ]
    assert after == {c.id for c in CHUNKER.split(edited)}


async def test_scope_removes_missing_documents_under_it_only() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    await ingestor.ingest(CORPUS)

    report = await ingestor.ingest([CORPUS[0]], scope="docs/")
    assert report.documents_removed == 1 and report.chunks_deleted == 2
    assert set(await index.chunk_ids_by_document()) == {"docs/a.md", "guides/c.md"}

    unscoped = await ingestor.ingest([CORPUS[0]])
    assert unscoped.documents_removed == 0
    assert set(await index.chunk_ids_by_document()) == {"docs/a.md", "guides/c.md"}

    everything = await ingestor.ingest([], scope="")
    assert everything.documents_removed == 2 and await index.count() == 0


async def test_a_source_prunes_only_its_own_documents() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    project = [page("docs/ingestion.md", *paragraphs("project", 2))]
    book = [CORPUS[0], CORPUS[1]]  # also under docs/, from another folder
    await ingestor.ingest(project, source="/repo/docs")
    await ingestor.ingest(book, source="/book/docs")

    again = await ingestor.ingest(project, source="/repo/docs")
    assert again.documents_unchanged == 1 and again.documents_removed == 0
    assert set(await index.chunk_ids_by_document()) == {
        "docs/ingestion.md",
        "docs/a.md",
        "docs/b.md",
    }

    shrunk = await ingestor.ingest(book[:1], source="/book/docs")
    assert shrunk.documents_removed == 1
    assert set(await index.chunk_ids_by_document("/book/docs")) == {"docs/a.md"}
    assert set(await index.chunk_ids_by_document("/repo/docs")) == {"docs/ingestion.md"}


async def test_a_document_moved_to_another_source_is_taken_over() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    await ingestor.ingest([CORPUS[0]], source="/old/docs")
    moved = await ingestor.ingest([CORPUS[0]], source="/new/docs")
    assert moved.documents_changed == 1 and moved.chunks_written == 3
    assert await index.chunk_ids_by_document("/old/docs") == {}
    gone = await ingestor.ingest([], source="/old/docs")
    assert gone.documents_removed == 0 and await index.count() == 3


async def test_a_document_that_became_empty_loses_its_chunks() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    await ingestor.ingest(CORPUS[:1])
    report = await ingestor.ingest([page("docs/a.md")])  # only its heading is left
    assert report.documents_changed == 1 and report.chunks_deleted == 3
    assert await index.count() == 0


async def test_duplicate_document_ids_are_rejected_before_any_work() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    with pytest.raises(InvalidInput, match=r"docs/a\.md"):
        await ingestor.ingest([CORPUS[0], CORPUS[1], page("docs/a.md", "again")])
    assert index.prepared_with == [] and index.operations == []


async def test_embedding_batches_and_concurrency_are_bounded() -> None:
    index, embedder = RecordingIndex(), FakeEmbedder()
    ingestor, _ = make(index, embedder, batch_size=3, max_concurrency=2, write_batch_size=4)
    docs = [page(f"docs/{i}.md", *paragraphs(f"doc{i}", 5)) for i in range(4)]  # 20 chunks
    report = await ingestor.ingest(docs)

    assert report.chunks_written == 20
    assert report.embedding_calls == len(embedder.calls)
    assert all(1 <= len(batch) <= 3 for batch in embedder.calls)
    assert sum(len(batch) for batch in embedder.calls) == 20
    assert embedder.peak_in_flight == 2
    upserts = [ids for kind, ids in index.operations if kind == "upsert"]
    assert all(len(ids) <= 4 for ids in upserts) and sum(map(len, upserts)) == 20


async def test_writes_and_deletes_are_batched() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index, write_batch_size=2)
    await ingestor.ingest([page("docs/a.md", *paragraphs("a", 5))])
    assert [len(ids) for kind, ids in index.operations] == [2, 2, 1]
    await ingestor.ingest([], scope="docs/")
    assert [len(ids) for kind, ids in index.operations if kind == "delete"] == [2, 2, 1]


async def test_progress_is_reported_after_each_document() -> None:
    seen: list[tuple[int, int]] = []
    ingestor, _ = make(RecordingIndex())
    await ingestor.ingest(CORPUS[:2])
    await ingestor.ingest(CORPUS, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_lexical_only_ingestion_prepares_without_dimension() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index)
    report = await ingestor.ingest(CORPUS[:1])
    assert index.prepared_with == [None]
    assert report.embedding_calls == 0
    assert all(item.dense is None for item in index.items.values())


async def test_a_misbehaving_embedder_fails_loudly_and_writes_nothing() -> None:
    index = RecordingIndex()
    ingestor, _ = make(index, FakeEmbedder(broken=True))
    with pytest.raises(DependencyUnavailable, match="embedder"):
        await ingestor.ingest(CORPUS)
    assert index.operations == []


async def test_an_index_of_another_dimension_is_reported() -> None:
    index = RecordingIndex()
    await index.prepare(4)
    ingestor, _ = make(index, FakeEmbedder(dimension=8))
    with pytest.raises(IndexMismatch):
        await ingestor.ingest(CORPUS)


@pytest.mark.parametrize("setting", ["batch_size", "max_concurrency", "write_batch_size"])
def test_settings_below_one_are_rejected(setting: str) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        Ingestor(RecordingIndex(), FakeEncoder(), CHUNKER, None, **{setting: 0})
