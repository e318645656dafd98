"""Translation between the core's values and the engine's points, filters and queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

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
    RangeFloat,
    ScoredPoint,
    SparseVector,
)

from adapters import qdrant_layout as layout
from adapters.qdrant_layout import DENSE, DOCUMENT_ID, LEXICAL, ORDINAL
from rag_core.answers import Passage
from rag_core.documents import IndexedChunk
from rag_core.documents import SparseVector as CoreSparseVector
from rag_core.fusion import RRF_K
from rag_core.ports import SearchQuery


def point(item: IndexedChunk) -> Point:
    """The engine point of a chunk (:mod:`adapters.qdrant_layout`)."""
    return Point(item.chunk.id, layout.vectors(item, _sparse), layout.payload(item.chunk))


def passage(hit: ScoredPoint, rank: int) -> Passage:
    """A search hit as a Passage; a payload that is not a chunk's is a layout mismatch."""
    return Passage(chunk=layout.chunk(hit), score=hit.score, rank=rank)


def search_request(query: SearchQuery) -> QueryRequest:
    """Lexical search, or RRF over a dense (and, if any terms, a lexical) prefetch."""
    where = payload_filter(query.filters)
    sparse = _sparse(query.sparse)
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
    return Filter(must=[FieldCondition(DOCUMENT_ID, match=MatchAny(list(document_ids)))])


def spans_filter(spans: Sequence[tuple[str, int, int]]) -> Filter:
    """The chunks of each ``(document_id, first, last)`` span, ordinals included."""
    return Filter(
        should=[
            Filter(
                must=[
                    FieldCondition(DOCUMENT_ID, match=MatchValue(document)),
                    FieldCondition(ORDINAL, range=RangeFloat(gte=first, lte=last)),
                ]
            )
            for document, first, last in spans
        ]
    )


def _sparse(vector: CoreSparseVector) -> SparseVector:
    return SparseVector(list(vector.indices), list(vector.values))
