"""The index owner's messages: JSON, with an explicit codec of each domain value.

Chunks and passages travel as lists in the field order below (both ends run the same
install, started together); a sparse vector as two lists; a dense one as base64 of its
float64 bytes in the host's order (exact, both ends of a Unix socket share a host, and
far cheaper than ``json`` printing 1536 floats). Errors travel as their type's name and
fields and are raised again as the same type: the core's family by name (a subclass as
its nearest known base, e.g. IndexLocked as DependencyUnavailable), anything else as
:class:`OwnerError`.
"""

from __future__ import annotations

import base64
import json
from array import array
from collections.abc import Sequence
from typing import Any

from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    IndexMismatch,
    InvalidInput,
    NotFound,
    RagError,
    Unauthenticated,
)
from rag_core.ports import SearchQuery

Wire = Any  # what json.loads gives: checked by the decoders, not by the type checker

_ERRORS: dict[str, type[RagError]] = {
    cls.__name__: cls
    for cls in (InvalidInput, Unauthenticated, NotFound, Forbidden, Conflict, IndexMismatch)
}
_ERRORS["RagError"] = RagError


class OwnerError(RuntimeError):
    """The owner's index raised something outside the core's error family (a bug):
    raised in the worker as the in-process call would have raised it, a server error."""


def dumps(message: object) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("ascii")  # any text, escaped


def loads(frame: bytes) -> Wire:
    return json.loads(frame)


def dense_to_wire(vector: Sequence[float] | None) -> str | None:
    if vector is None:
        return None
    return base64.b64encode(array("d", vector).tobytes()).decode("ascii")


def dense_from_wire(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    values = array("d")
    values.frombytes(base64.b64decode(text))
    return tuple(values)


def sparse_to_wire(vector: SparseVector) -> list[list[int] | list[float]]:
    return [list(vector.indices), list(vector.values)]


def sparse_from_wire(value: Wire) -> SparseVector:
    return SparseVector(tuple(value[0]), tuple(value[1]))


def chunk_to_wire(chunk: Chunk) -> list[object]:
    return [
        chunk.id,
        chunk.document_id,
        chunk.ordinal,
        chunk.text,
        chunk.heading_path,
        chunk.content_hash,
        chunk.route,
        chunk.title,
        chunk.section,
        chunk.source,
    ]


def chunk_from_wire(v: Wire) -> Chunk:
    return Chunk(v[0], v[1], v[2], v[3], tuple(v[4]), v[5], v[6], v[7], v[8], v[9])


def indexed_to_wire(item: IndexedChunk) -> list[object]:
    return [chunk_to_wire(item.chunk), sparse_to_wire(item.sparse), dense_to_wire(item.dense)]


def indexed_from_wire(v: Wire) -> IndexedChunk:
    return IndexedChunk(chunk_from_wire(v[0]), sparse_from_wire(v[1]), dense_from_wire(v[2]))


def query_to_wire(query: SearchQuery) -> list[object]:
    return [sparse_to_wire(query.sparse), dense_to_wire(query.dense), query.limit, query.filters]


def query_from_wire(v: Wire) -> SearchQuery:
    filters = {str(key): str(value) for key, value in v[3].items()}
    return SearchQuery(sparse_from_wire(v[0]), dense_from_wire(v[1]), int(v[2]), filters)


def passage_to_wire(passage: Passage) -> list[object]:
    return [chunk_to_wire(passage.chunk), passage.score, passage.rank]


def passage_from_wire(v: Wire) -> Passage:
    return Passage(chunk_from_wire(v[0]), float(v[1]), int(v[2]))


def error_to_wire(exc: BaseException) -> dict[str, object]:
    for cls in type(exc).__mro__:
        if cls is DependencyUnavailable:
            assert isinstance(exc, DependencyUnavailable)
            return {
                "type": cls.__name__,
                "dependency": exc.dependency,
                "reason": exc.reason,
                "retry_after": exc.retry_after,
            }
        if cls.__name__ in _ERRORS and cls is _ERRORS[cls.__name__]:
            return {"type": cls.__name__, "message": str(exc)}
    return {"type": "", "message": f"{type(exc).__name__}: {exc}"}


def error_from_wire(v: Wire) -> Exception:
    kind = str(v.get("type", ""))
    if kind == "DependencyUnavailable":
        return DependencyUnavailable(str(v["dependency"]), str(v["reason"]), v.get("retry_after"))
    message = str(v.get("message", ""))
    known = _ERRORS.get(kind)
    return known(message) if known is not None else OwnerError(message)
