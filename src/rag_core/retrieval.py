"""Retrieval: a query in, diverse ranked passages out (lexical, or hybrid with an embedder)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import attrs

from rag_core.answers import Passage
from rag_core.context import REACH, neighbours, widen
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.ports import Embedder, SearchQuery, SparseEncoder, VectorIndex
from rag_core.sections import about_the_page


@attrs.frozen(slots=True)
class Retrieval:
    """Passages and how they were found: ``mode`` is "hybrid" or "lexical";
    ``degraded`` names the embedder's dependency when it failed and the search
    fell back to lexical."""

    passages: list[Passage]
    mode: str
    degraded: tuple[str, ...] = ()


class Retriever:
    """Searches the index with a sparse query vector, plus a dense one when an
    embedder is set (the index fuses both), then caps passages per document.

    ``candidates`` passages are fetched so that the per-document cap
    (``max_per_document``) still leaves ``limit`` passages when one document
    dominates. :meth:`widen` reads passages with their neighbouring chunks, up to
    ``widen_chars`` characters each ("small-to-big", see :mod:`rag_core.context`). Raises ValueError for a limit, cap or candidate count below 1.
    """

    def __init__(
        self,
        index: VectorIndex,
        encoder: SparseEncoder,
        embedder: Embedder | None = None,
        *,
        limit: int = 6,
        max_per_document: int = 3,
        candidates: int = 24,
        widen_chars: int = 0,
    ) -> None:
        if min(limit, max_per_document, candidates) < 1:
            raise ValueError("limit, max_per_document and candidates must be >= 1")
        self._index = index
        self._encoder = encoder
        self._embedder = embedder
        self._limit = limit
        self._max_per_document = max_per_document
        self._candidates = candidates
        self._widen_chars = widen_chars

    @property
    def mode(self) -> str:
        """``"hybrid"`` when an embedder is set, else ``"lexical"``."""
        return "hybrid" if self._embedder is not None else "lexical"

    async def retrieve(
        self,
        query: str,
        *,
        limit: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[Passage]:
        """The passages of :meth:`search`; raises if the embedder fails."""
        return (await self.search(query, limit=limit, filters=filters, fallback=False)).passages

    async def search(
        self,
        query: str,
        *,
        limit: int | None = None,
        filters: Mapping[str, str] | None = None,
        fallback: bool = True,
    ) -> Retrieval:
        """The best passages for ``query``, best first, ranks from 1, at most ``limit``.

        ``filters`` match payload fields exactly (``document_id``, ``section``).
        Raises InvalidInput for a blank query or a limit below 1; a query with
        no usable terms and no embedder gives ``[]``. Raises DependencyUnavailable
        when the index fails; when the embedder fails (or returns other than one
        vector), falls back to lexical search and says so in ``degraded`` —
        unless ``fallback`` is False, then it raises.
        """
        if not query.strip():
            raise InvalidInput("the query is empty")
        wanted = self._limit if limit is None else limit
        if wanted < 1:
            raise InvalidInput(f"limit must be at least 1, got {wanted}")
        sparse = self._encoder.encode_query(query)
        mode = self.mode
        degraded: tuple[str, ...] = ()
        try:
            dense = await self._embed(query)
        except DependencyUnavailable as exc:
            if not fallback:
                raise
            dense, mode, degraded = None, "lexical", (exc.dependency,)
        if not sparse.indices and dense is None:
            return Retrieval([], mode, degraded)
        search = SearchQuery(
            sparse=sparse,
            dense=dense,
            limit=max(self._candidates, wanted),
            filters=dict(filters or {}),
        )
        found = await self._index.search(search)
        # Objectives, review questions and the like go last: they name topics, never answer.
        found = sorted(found, key=lambda p: about_the_page(p.chunk.heading_path))
        passages = _diversify(found, wanted, self._max_per_document)
        return Retrieval(passages, mode, degraded)

    async def widen(self, passages: list[Passage]) -> list[Passage]:
        """Each passage read with its neighbours, up to ``widen_chars`` (see
        :mod:`rag_core.context`); the passages as they are when ``widen_chars`` is
        0 or the index cannot list the neighbours."""
        wide, _ = await self.surroundings(passages)
        return wide

    async def surroundings(self, passages: list[Passage]) -> tuple[list[Passage], list[Passage]]:
        """:meth:`widen`'s passages, and their neighbouring chunks as passages of their
        own (:func:`rag_core.context.neighbours`), from one read of the index: both
        only when ``widen_chars`` is set (none when the index cannot list them)."""
        if not self._widen_chars or not passages:
            return passages, []
        spans = [
            (p.chunk.document_id, max(0, p.chunk.ordinal - REACH), p.chunk.ordinal + REACH)
            for p in passages
        ]
        try:
            stored = await self._index.neighbourhood(spans)  # not every chunk of the documents
        except DependencyUnavailable:
            return passages, []
        return widen(passages, stored, self._widen_chars), neighbours(passages, stored)

    async def _embed(self, query: str) -> tuple[float, ...] | None:
        if self._embedder is None:
            return None
        vectors = await self._embedder.embed([query])
        if len(vectors) != 1:
            raise DependencyUnavailable("embedder", f"returned {len(vectors)} vectors for one text")
        return vectors[0]


def _diversify(passages: Sequence[Passage], limit: int, per_document: int) -> list[Passage]:
    """At most ``per_document`` passages of one document, order kept, ranks renumbered."""
    taken: Counter[str] = Counter()
    kept: list[Passage] = []
    for passage in passages:
        document = passage.chunk.document_id
        if taken[document] < per_document:
            taken[document] += 1
            kept.append(attrs.evolve(passage, rank=len(kept) + 1))
            if len(kept) == limit:
                break
    return kept
