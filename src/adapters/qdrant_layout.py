"""The storage layout both Qdrant adapters share, over plain values.

One layout for :class:`adapters.qdrant_index.QdrantIndex` (qdrant-client: a server,
Qdrant Cloud, local mode) and :class:`adapters.qdrant_edge.EdgeIndex` (Qdrant Edge,
embedded), so an index written by one reads the same in the other:

- sparse vector ``lexical`` with the IDF modifier (the engine scores BM25 from the
  encoder's document-side weights) and, when a dimension is given, dense vector
  ``dense`` with cosine distance;
- the point id is the chunk id, a canonical UUID string (lower-case, hyphenated);
- the payload holds every other :class:`~rag_core.documents.Chunk` field by its
  name (``heading_path`` as a list), with keyword indexes on ``document_id``,
  ``section`` and ``source``.

The vendors' types differ (qdrant-client's pydantic models, Qdrant Edge's
classes), so this module knows neither: it works on payload dicts, on a
collection's configuration as JSON (``vectors``, ``sparse_vectors``), and on any
point with an ``id`` and a ``payload``. Each adapter converts to its own types.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import IndexMismatch, InvalidInput

LEXICAL = "lexical"
DENSE = "dense"
DOCUMENT_ID = "document_id"
SOURCE = "source"
KEYWORD_FIELDS = (DOCUMENT_ID, "section", SOURCE)
ORDINAL = "ordinal"  # a chunk's place in its document: neighbours are found by it
PAYLOAD_FIELDS = tuple(field.name for field in attrs.fields(Chunk) if field.name != "id")
EXPECTED = f"sparse '{LEXICAL}' with IDF and optional cosine '{DENSE}'"


class StoredPoint(Protocol):
    """A point as either client returns it (a record or a scored hit)."""

    @property
    def id(self) -> object: ...

    @property
    def payload(self) -> Mapping[str, Any] | None: ...


# --- points ---


def payload(chunk: Chunk) -> dict[str, Any]:
    """A chunk's payload: every field but ``id`` (the point id); the clients send
    ``heading_path`` as a JSON list."""
    fields = attrs.asdict(chunk)
    del fields["id"]
    return fields


def vectors(item: IndexedChunk, sparse: Callable[[SparseVector], object]) -> dict[str, Any]:
    """A chunk's named vectors, its sparse one converted by ``sparse`` to the vendor's type."""
    named: dict[str, Any] = {LEXICAL: sparse(item.sparse)}
    if item.dense is not None:
        named[DENSE] = list(item.dense)
    return named


def chunk(point: StoredPoint) -> Chunk:
    """The chunk a point holds; a payload that is not a chunk's is a layout mismatch."""
    payload = point.payload or {}  # once: Qdrant Edge converts the whole payload per access
    try:
        fields = {name: payload[name] for name in PAYLOAD_FIELDS}
        return Chunk(id=str(point.id), **{**fields, "heading_path": tuple(fields["heading_path"])})
    except (KeyError, TypeError) as exc:
        raise IndexMismatch(
            f"point {point.id} does not hold a chunk payload; a re-index is needed"
        ) from exc


class DocumentChunkIds:
    """Point ids grouped by their payload's ``document_id``, page by page as a scroll
    returns them (what ``chunk_ids_by_document`` answers)."""

    def __init__(self) -> None:
        self._grouped: dict[str, set[str]] = {}

    def add(self, points: Iterable[StoredPoint]) -> None:
        for point in points:
            document_id = str((point.payload or {})[DOCUMENT_ID])
            self._grouped.setdefault(document_id, set()).add(str(point.id))

    def result(self) -> dict[str, frozenset[str]]:
        return {document: frozenset(ids) for document, ids in self._grouped.items()}


def source_match(source: str | None) -> dict[str, str]:
    """The exact payload matches that select one source's chunks (none: every chunk)."""
    return {SOURCE: source} if source is not None else {}


# --- ids ---


def is_canonical_uuid(value: str) -> bool:
    """Whether ``value`` is spelled as Qdrant returns ids (lower-case, hyphenated)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def check_id(chunk_id: str) -> None:
    """Reject an id Qdrant would store re-spelled: re-ingestion could not diff it."""
    if not is_canonical_uuid(chunk_id):
        raise InvalidInput(f"chunk id {chunk_id!r} is not a canonical UUID string")


# --- the collection's vectors ---


def dense_dimension_of(config: Mapping[str, Any], where: str) -> int | None:
    """The dense dimension a collection was laid out with (None: lexical only).

    ``config`` is the collection's configuration as JSON (``vectors`` and
    ``sparse_vectors`` by name); ``where`` names it in the error ("Qdrant
    collection 'docs'"). Raises IndexMismatch unless this layout made it: other
    vectors, another distance, no IDF on ``lexical``, or an unreadable shape.
    """
    try:
        named = config.get("vectors") or {}
        sparse = config.get("sparse_vectors") or {}
        lexical = sparse.get(LEXICAL) or {}
        dense = named.get(DENSE)
        if (
            set(sparse) != {LEXICAL}
            or str(lexical.get("modifier", "")).lower() != "idf"
            or set(named) - {DENSE}
            or (dense is not None and str(dense.get("distance", "")).lower() != "cosine")
        ):
            raise ValueError("unexpected layout")
        return None if dense is None else int(dense["size"])
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise foreign_layout(where) from exc


def foreign_layout(where: str) -> IndexMismatch:
    """The error for a collection this layout did not make."""
    return IndexMismatch(
        f"{where} was not created by this adapter (expected {EXPECTED}); a re-index is needed"
    )


def describe(dense_dimension: int | None) -> str:
    if dense_dimension is None:
        return "no dense vectors (lexical only)"
    return f"dense vectors of dimension {dense_dimension}"


def dimension_mismatch(
    where: str, existing: int | None, configured: int | None, remedy: str
) -> IndexMismatch:
    """The error for a collection laid out for another embedder than the configured one."""
    return IndexMismatch(
        f"{where} holds {describe(existing)} but {describe(configured)} is configured; "
        f"a re-index is needed ({remedy})"
    )


def check_dense(dimension: int, prepared_for: int | None, where: str) -> None:
    """Raise IndexMismatch unless a dense vector of ``dimension`` fits the prepared layout."""
    if dimension != prepared_for:
        raise IndexMismatch(
            f"dense vector of dimension {dimension}, but {where} is prepared for "
            f"{describe(prepared_for)}"
        )
