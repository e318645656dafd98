from __future__ import annotations

import pytest

from adapters.span_cache import SpanCache
from rag_core.documents import Chunk


def _chunk(document: str, ordinal: int) -> Chunk:
    return Chunk(
        id=f"{document}#{ordinal}",
        document_id=document,
        title="T",
        route="/t",
        heading_path=(),
        text=f"text {ordinal}",
        ordinal=ordinal,
        content_hash="h",
    )


def test_a_span_read_once_is_known_until_the_next_write() -> None:
    cache = SpanCache()
    chunks = [_chunk("a", n) for n in range(5)] + [_chunk("b", 1)]
    assert cache.split([("a", 0, 2), ("a", 3, 9)], version=0) == ([], [("a", 0, 2), ("a", 3, 9)])
    cache.add([("a", 0, 2), ("a", 3, 9)], chunks, version=0)
    known, wanted = cache.split([("a", 0, 2), ("a", 3, 9), ("b", 0, 2)], version=0)
    assert [c.ordinal for c in known] == [0, 1, 2, 3, 4] and wanted == [("b", 0, 2)]
    assert cache.split([("a", 0, 2)], version=1) == ([], [("a", 0, 2)])


def test_a_read_that_overlapped_a_write_is_not_kept() -> None:
    cache = SpanCache()
    cache.split([("a", 0, 2)], version=1)  # a write finished while the read ran
    cache.add([("a", 0, 2)], [_chunk("a", 0)], version=0)
    assert cache.split([("a", 0, 2)], version=1) == ([], [("a", 0, 2)])


def test_the_least_recently_used_span_goes_first() -> None:
    cache = SpanCache(size=2)
    cache.split([("a", 0, 0), ("b", 0, 0)], version=0)
    cache.add([("a", 0, 0), ("b", 0, 0)], [_chunk("a", 0), _chunk("b", 0)], version=0)
    cache.split([("a", 0, 0)], version=0)  # a is used again: b is now the oldest
    cache.add([("c", 0, 0)], [_chunk("c", 0)], version=0)
    assert cache.split([("a", 0, 0), ("b", 0, 0), ("c", 0, 0)], version=0)[1] == [("b", 0, 0)]


def test_what_was_read_is_not_kept_before_a_version_is_known() -> None:
    cache = SpanCache()
    cache.add([("a", 0, 0)], [_chunk("a", 0)], version=(1, 0))
    assert cache.split([("a", 0, 0)], version=(1, 0)) == ([], [("a", 0, 0)])


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SpanCache(size=0)
