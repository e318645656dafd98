"""The chunks of recently read neighbourhoods, until the shard is next written.

A passage's neighbours (``VectorIndex.neighbourhood``) are read for every answer, and
popular passages come back again and again: at 50 users the scroll and the payloads'
conversion were a fifth of the service's CPU (bench/README.md, P14). An
:class:`~adapters.qdrant_edge.index.EdgeIndex` is the shard's only holder (the folder
lock), so every write goes through it and a count of finished writes tells whether
what was read is still what the shard holds; a worker's
:class:`~adapters.index_owner.RemoteIndex` keeps what the owner sent under the owner's
count of writes, which every answer carries.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence

from rag_core.documents import Chunk

Span = tuple[str, int, int]


class SpanCache:
    """Chunks by ``(document_id, first, last)`` span, at most ``size`` spans (least
    recently used first out), each valid while the index's version (a count of
    writes, or anything that changes when the index may have) is the one it was read
    at."""

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._spans: OrderedDict[Span, tuple[Chunk, ...]] = OrderedDict()
        self._version: Hashable = None

    def split(self, spans: Sequence[Span], version: Hashable) -> tuple[list[Chunk], list[Span]]:
        """The chunks of the spans known at ``version``, and the spans still to read."""
        if version != self._version:
            self._spans.clear()
            self._version = version
        known: list[Chunk] = []
        wanted: list[Span] = []
        for span in dict.fromkeys(spans):
            chunks = self._spans.get(span)
            if chunks is None:
                wanted.append(span)
            else:
                self._spans.move_to_end(span)
                known.extend(chunks)
        return known, wanted

    def add(self, spans: Sequence[Span], chunks: Iterable[Chunk], version: Hashable) -> None:
        """What a read of the index at ``version`` found for ``spans``: each span keeps
        the chunks it covers (nothing is kept unless that is the version last split at:
        the index may have changed since)."""
        if version != self._version:
            return
        found: dict[Span, list[Chunk]] = {span: [] for span in spans}
        for chunk in chunks:
            for span in found:
                document, first, last = span
                if chunk.document_id == document and first <= chunk.ordinal <= last:
                    found[span].append(chunk)
        for span, covered in found.items():
            self._spans[span] = tuple(covered)
            self._spans.move_to_end(span)
        while len(self._spans) > self._size:
            self._spans.popitem(last=False)

    async def read(
        self,
        spans: Sequence[Span],
        version: Hashable,
        fetch: Callable[[list[Span]], Awaitable[tuple[list[Chunk], Hashable]]],
    ) -> list[Chunk]:
        """The chunks of ``spans``, each once: what is known at ``version``, and what
        ``fetch`` reads of the others (it gives the chunks and the version it read at)."""
        known, wanted = self.split(spans, version)
        if not wanted:
            return _distinct(known)
        found, read_at = await fetch(wanted)
        self.add(wanted, found, read_at)
        return _distinct([*known, *found])


def _distinct(chunks: Iterable[Chunk]) -> list[Chunk]:
    """``chunks`` without repeats (the chunks of overlapping spans), in order."""
    return list({chunk.id: chunk for chunk in chunks}.values())
