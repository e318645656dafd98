"""Translation between the core's values and the engine's points, filters and queries."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs
from qdrant_edge import (
    FieldCondition,
    Filter,
    Fusion,
    MatchAny,
    MatchValue,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    SparseVector,
)

from adapters.qdrant_edge.layout import DENSE, LEXICAL
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import IndexMismatch, InvalidInput
from rag_core.fusion import RRF_K
from rag_core.ports import SearchQuery

_PAYLOAD_FIELDS = tuple(field.name for field in attrs.fields(Chunk) if field.name != "id")


def point(item: IndexedChunk) -> Point:
    """The engine point of a chunk: id = chunk id, payload = every other Chunk field."""
    vector: dict[str, Any] = {LEXICAL: _sparse(item.sparse.indices, item.sparse.values)}
    if item.dense is not None:
        vector[DENSE] = list(item.dense)
    payload = attrs.asdict(item.chunk)  # tuples become lists
    return Point(payload.pop("id"), vector, payload)


def passage(
    point_id: object, payload: Mapping[str, Any] | None, score: float, rank: int
) -> Passage:
    """A search hit as a Passage; a payload that is not a chunk's is a layout mismatch."""
    try:
        fields = {name: (payload or {})[name] for name in _PAYLOAD_FIELDS}
        chunk = Chunk(id=str(point_id), **{**fields, "heading_path": tuple(fields["heading_path"])})
    except (KeyError, TypeError) as exc:
        raise IndexMismatch(
            f"point {point_id} does not hold a chunk payload; a re-index is needed"
        ) from exc
    return Passage(chunk=chunk, score=score, rank=rank)


def is_canonical_uuid(value: str) -> bool:
    """Whether ``value`` is spelled as the engine returns ids (lower-case, hyphenated)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def check_id(chunk_id: str) -> None:
    """Reject an id the engine would store re-spelled: re-ingestion could not diff it."""
    if not is_canonical_uuid(chunk_id):
        raise InvalidInput(f"chunk id {chunk_id!r} is not a canonical UUID string")


def search_request(query: SearchQuery) -> QueryRequest:
    """Lexical search, or RRF over a dense (and, if any terms, a lexical) prefetch."""
    where = payload_filter(query.filters)
    sparse = _sparse(query.sparse.indices, query.sparse.values)
    if query.dense is None:
        return QueryRequest(
            limit=query.limit,
            query=Query.Nearest(sparse, using=LEXICAL),
            filter=where,
            with_payload=True,
        )
    depth = query.limit * 2
    prefetches = [
        Prefetch(limit=depth, query=Query.Nearest(list(query.dense), using=DENSE), filter=where)
    ]
    if query.sparse.indices:
        prefetches.append(
            Prefetch(limit=depth, query=Query.Nearest(sparse, using=LEXICAL), filter=where)
        )
    # The stubs nest Rrf inside Fusion without subclassing it; the engine accepts it.
    rrf = cast(Fusion, Fusion.Rrf(k=RRF_K))
    return QueryRequest(
        limit=query.limit, prefetches=prefetches, query=rrf, filter=where, with_payload=True
    )


def payload_filter(filters: Mapping[str, str]) -> Filter | None:
    """Payload fields that must match exactly (None: no filter)."""
    if not filters:
        return None
    return Filter(
        must=[FieldCondition(key, match=MatchValue(value)) for key, value in filters.items()]
    )


def documents_filter(document_ids: Sequence[str] | None) -> Filter | None:
    """The chunks of these documents (None: every chunk)."""
    if document_ids is None:
        return None
    return Filter(must=[FieldCondition("document_id", match=MatchAny(list(document_ids)))])


def _sparse(indices: tuple[int, ...], values: tuple[float, ...]) -> SparseVector:
    return SparseVector(list(indices), list(values))
