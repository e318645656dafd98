"""Documents and the chunks cut from them: the values that ingestion produces."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen(slots=True)
class Document:
    """One source page after parsing.

    ``id`` is the source path relative to the ingested root, in POSIX form
    (``docs/week3/ros2-nodes-topics.md``); it is stable across runs and is what
    re-ingestion diffs against. ``route`` is the site route readers open
    (``/docs/week3/ros2-nodes-topics``).
    """

    id: str
    route: str
    title: str
    text: str
    metadata: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class SparseVector:
    """A sparse term vector: parallel tuples of term ids (uint32) and weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __attrs_post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("indices and values must have the same length")


@attrs.frozen(slots=True)
class Chunk:
    """A heading-aware piece of a document, the unit that is indexed and cited.

    ``id`` is a UUID string derived from the document id, the ordinal and the
    content hash, so an unchanged chunk keeps its id across runs and processes.
    ``section`` is the folder of the document (``docs/week3``), a filter for search.
    ``source`` names what the document was ingested from (a folder), so that
    re-ingesting that folder prunes only its own documents.
    """

    id: str
    document_id: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    content_hash: str
    route: str
    title: str
    section: str = ""
    source: str = ""

    @property
    def breadcrumb(self) -> str:
        """``Title > Heading > Subheading`` for display and for prompts."""
        parts = [self.title, *self.heading_path]
        deduped = [p for i, p in enumerate(parts) if p and (i == 0 or p != parts[i - 1])]
        return " > ".join(deduped)


@attrs.frozen(slots=True)
class IndexedChunk:
    """A chunk with the vectors the index stores for it."""

    chunk: Chunk
    sparse: SparseVector
    dense: tuple[float, ...] | None = None
