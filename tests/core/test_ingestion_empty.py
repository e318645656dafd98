"""Issue 14, item 10: an empty or heading-only NEW document is not reported as
"unchanged" (it was never in the index). It counts as added with no chunks, and the
report's documents_empty says how many documents had nothing to index."""

from __future__ import annotations

import attrs

from adapters.memory.index import InMemoryIndex
from rag_core.chunking import Chunker
from rag_core.ingestion import Ingestor, IngestReport
from rag_core.lexical import LexicalEncoder
from rag_core.markdown import parse_document


def ingestor(index: InMemoryIndex) -> Ingestor:
    return Ingestor(index, LexicalEncoder(), Chunker())


FULL = parse_document("docs/full.md", "# Full\n\nNodes talk over topics.\n")
EMPTY = parse_document("docs/empty.md", "")
HEADINGS = parse_document("docs/headings.md", "# Title\n\n## Section\n\n### Sub\n")


async def test_a_new_empty_or_heading_only_document_is_not_unchanged() -> None:
    index = InMemoryIndex()
    report = await ingestor(index).ingest([FULL, EMPTY, HEADINGS])
    assert report.documents_unchanged == 0
    assert report.documents_added == 3 and report.documents_empty == 2
    assert set(await index.chunk_ids_by_document()) == {"docs/full.md"}


async def test_empty_documents_are_counted_as_empty_on_every_run() -> None:
    index = InMemoryIndex()
    await ingestor(index).ingest([FULL, EMPTY])
    again = await ingestor(index).ingest([FULL, EMPTY])
    # Nothing of the empty one is stored, so it is new again, and empty again.
    assert (again.documents_unchanged, again.documents_added, again.documents_empty) == (1, 1, 1)
    assert again.chunks_written == 0


async def test_a_document_that_became_empty_is_changed_and_empty() -> None:
    index = InMemoryIndex()
    await ingestor(index).ingest([FULL])
    emptied = parse_document("docs/full.md", "# Full\n")
    report = await ingestor(index).ingest([emptied])
    assert (report.documents_changed, report.documents_empty) == (1, 1)
    assert report.chunks_deleted >= 1 and await index.count() == 0


def test_the_report_only_gained_a_field() -> None:
    # Positional construction and field order of earlier versions still hold.
    names = [field.name for field in attrs.fields(IngestReport)]
    assert names == [
        "documents_added",
        "documents_changed",
        "documents_unchanged",
        "documents_removed",
        "chunks_written",
        "chunks_deleted",
        "embedding_calls",
        "documents_empty",
    ]
    assert IngestReport(1, 2, 3, 4, 5, 6, 7).documents_empty == 0
