"""A VectorIndex prepared by the first call that reaches it, when start-up could not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import DependencyUnavailable
from rag_core.ports import SearchQuery, VectorIndex

log = logging.getLogger(__name__)


class LazyIndex:
    """A :class:`~rag_core.ports.VectorIndex` that runs ``prepare`` (lay the collection
    out, re-embed it for another embedder) before the first call that needs it.

    :meth:`start` tries it at once. An unavailable dependency there is logged as one
    line naming ``target`` (e.g. ``qdrant at host:port``; never a secret, never a
    traceback) and not raised, so the service starts without the index; any other
    error is raised, as a layout that cannot be fixed must still stop the start-up.

    Until preparation succeeds, every call (re)tries it first. Concurrent callers share
    one attempt, run in a task of its own, so a caller that gives up (a closed
    connection) does not cancel it for the others; a failed attempt fails its callers
    with its error and the next call tries again (through ``inner``'s circuit breaker,
    so an open circuit refuses at once). Once prepared, calls go straight to ``inner``.

    :meth:`probe` checks ``inner``; when it answers and preparation is pending, it
    starts preparation and waits up to ``probe_wait`` seconds for it, so the index is
    prepared when the dependency comes back even with no traffic. Until preparation
    has succeeded the probe fails (reason ``preparing`` while it runs).
    """

    def __init__(
        self,
        inner: VectorIndex,
        prepare: Callable[[], Awaitable[None]],
        *,
        dependency: str = "qdrant",
        target: str | None = None,
        probe_wait: float = 1.0,
    ) -> None:
        self._inner = inner
        self._prepare = prepare
        self._dependency = dependency
        self._target = target or dependency
        self._probe_wait = probe_wait
        self._prepared = asyncio.Event()
        self._attempt: asyncio.Task[None] | None = None
        self._deferred = False  # start-up went on without it
        self._reported: set[str] = set()

    @property
    def prepared(self) -> bool:
        return self._prepared.is_set()

    async def start(self) -> bool:
        """Prepare now; False (and one log line) when a dependency is unavailable."""
        try:
            await self._ensure()
        except DependencyUnavailable as exc:
            self._deferred = True
            name = self._target if exc.dependency == self._dependency else exc.dependency
            log.warning(
                "%s could not be reached at start-up (%s): starting without it; "
                "the index is prepared by the first call that reaches it",
                name,
                exc.reason,
            )
            return False
        return True

    async def wait_prepared(self) -> None:
        """Return once preparation has succeeded."""
        await self._prepared.wait()

    async def prepare(self, dense_dimension: int | None) -> None:
        await self._ensure()
        await self._inner.prepare(dense_dimension)

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        await self._ensure()
        await self._inner.upsert(chunks)

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        await self._ensure()
        await self._inner.delete(chunk_ids)

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        await self._ensure()
        return await self._inner.chunk_ids_by_document(source)

    async def search(self, query: SearchQuery) -> list[Passage]:
        await self._ensure()
        return await self._inner.search(query)

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        await self._ensure()
        return await self._inner.chunks(document_ids)

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        await self._ensure()
        return await self._inner.neighbourhood(spans)

    async def recreate(self, dense_dimension: int | None) -> None:
        await self._ensure()
        await self._inner.recreate(dense_dimension)

    async def count(self) -> int:
        await self._ensure()
        return await self._inner.count()

    async def probe(self) -> None:
        await self._inner.probe()
        if self._prepared.is_set():
            return
        try:
            async with asyncio.timeout(self._probe_wait):
                await self._ensure()
        except TimeoutError:
            raise DependencyUnavailable(self._dependency, "preparing") from None

    async def close(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None and not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
        await self._inner.close()

    async def _ensure(self) -> None:
        if self._prepared.is_set():
            return
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.create_task(self._run(), name="prepare-index")
            # Retrieved here, so an attempt whose callers all gave up never warns.
            self._attempt.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.shield(self._attempt)

    async def _run(self) -> None:
        try:
            await self._prepare()
        except DependencyUnavailable:
            raise  # transient: the next call tries again
        except Exception as exc:
            kind = type(exc).__name__
            if self._deferred and kind not in self._reported:  # start-up raised it otherwise
                self._reported.add(kind)
                log.error("%s: the index could not be prepared: %s", self._target, exc)
            raise
        self._prepared.set()
        if self._deferred:
            log.info("%s reached: the index is prepared", self._target)
