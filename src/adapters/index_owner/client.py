"""The workers' side: :class:`RemoteIndex`, the VectorIndex port over the owner's socket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

from adapters.index_owner import handshake, wire
from adapters.index_owner.frames import MAX_FRAME, FrameTooLarge, read_frame, write_frame
from adapters.span_cache import Span, SpanCache
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.ports import SearchQuery

UPSERT_BATCH = 256  # chunks per request: 4.5 MB at 1536 dimensions, far below a frame's limit
DELETE_BATCH = 8192


class RemoteIndex:
    """A :class:`~rag_core.ports.VectorIndex` served by the index owner at ``path``
    (:func:`~adapters.index_owner.serve_index`), for the worker processes of one DATA_DIR.

    One connection, opened on the first call (authenticated with the secret, read from
    ``key_path(path)`` unless given) and opened again after it is lost; requests are
    pipelined on it with ids, so concurrent calls do not wait for each other. Every call
    is bounded by ``timeout`` seconds, connecting included (an answer in parts, as
    ``chunks()`` sends, by ``timeout`` per part); a timeout, a refused or lost connection
    raise ``DependencyUnavailable(dependency, reason)``, as the in-process index's
    failures do, so the breaker and the health check count them the same way. The owner's
    errors are raised again here as their own type (see :mod:`~adapters.index_owner.wire`).

    Neighbourhoods are kept (:class:`~adapters.span_cache.SpanCache`) while the owner's
    answers say nothing was written since (each carries the owner's count of writes, and
    a search comes before a neighbourhood in every answer, so a write by another worker is
    seen at the next call); a new connection forgets them.

    Upserts and deletes cross in batches (:data:`UPSERT_BATCH`), so a request frame
    stays small whatever the caller passes. :meth:`close` closes the connection only:
    the owner's index stays open for the other workers. :meth:`after_deletes` runs the
    owner's post-ingest step (EdgeIndex's compaction).
    """

    def __init__(
        self,
        path: Path,
        *,
        secret: bytes | None = None,
        timeout: float = 10.0,
        dependency: str = "qdrant",
        max_frame: int = MAX_FRAME,
    ) -> None:
        self._path = path
        self._secret = secret
        self._timeout = timeout
        self._dependency = dependency
        self._max_frame = max_frame
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._closed = False
        self._connections = 0
        self._version = (0, -1)
        self._neighbourhoods = SpanCache()

    @property
    def path(self) -> Path:
        return self._path

    async def prepare(self, dense_dimension: int | None) -> None:
        await self._call("prepare", dense_dimension)

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        for start in range(0, len(chunks), UPSERT_BATCH):
            batch = chunks[start : start + UPSERT_BATCH]
            await self._call("upsert", [wire.indexed_to_wire(item) for item in batch])

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), DELETE_BATCH):
            await self._call("delete", list(chunk_ids[start : start + DELETE_BATCH]))

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        grouped = await self._call("chunk_ids_by_document", source)
        return {str(document): frozenset(ids) for document, ids in grouped.items()}

    async def search(self, query: SearchQuery) -> list[Passage]:
        found = await self._call("search", wire.query_to_wire(query))
        return [wire.passage_from_wire(item) for item in found]

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        ids = None if document_ids is None else list(document_ids)
        return [wire.chunk_from_wire(item) for item in await self._call("chunks", ids)]

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        if not spans:
            return []
        if self._closed:
            raise self._unavailable("this client is closed")
        connection = self._connection
        # After a lost connection the owner may be another one now: a version nothing
        # was read at, so nothing kept is served (nor is what this call reads kept).
        lost = connection is None or connection.lost
        version: Hashable = object() if lost else self._version

        async def fetch(wanted: list[Span]) -> tuple[list[Chunk], Hashable]:
            answer = await self._answer("neighbourhood", [list(span) for span in wanted])
            return [wire.chunk_from_wire(item) for item in answer["ok"]], self._version_of(answer)

        return await self._neighbourhoods.read(spans, version, fetch)

    async def recreate(self, dense_dimension: int | None) -> None:
        await self._call("recreate", dense_dimension)

    async def count(self) -> int:
        return int(await self._call("count"))

    async def probe(self) -> None:
        await self._call("probe")

    async def after_deletes(self) -> None:
        """What the owner runs after an ingest that deleted chunks (nothing if none)."""
        await self._call("after_deletes")

    async def close(self) -> None:
        """Close the connection (idempotent); later calls raise DependencyUnavailable."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def _unavailable(self, reason: str) -> DependencyUnavailable:
        return DependencyUnavailable(self._dependency, f"index owner at {self._path}: {reason}")

    async def _call(self, op: str, *args: object) -> wire.Wire:
        return (await self._answer(op, *args))["ok"]

    def _version_of(self, answer: wire.Wire) -> tuple[int, int]:
        """The owner's version of the index an answer was read at (this connection's
        number, the owner's count of writes), and the latest one known: neighbourhoods
        read at an older one are stale."""
        version = (self._connections, int(answer.get("w", -1)))
        self._version = max(self._version, version)
        return version

    async def _answer(self, op: str, *args: object) -> wire.Wire:
        if self._closed:
            raise self._unavailable("this client is closed")
        try:
            async with asyncio.timeout(self._timeout) as deadline:
                connection = await self._connected()
                answer = await connection.call(op, list(args), deadline, self._timeout)
        except TimeoutError:
            raise self._unavailable(f"no answer to {op} within {self._timeout:g} s") from None
        if "error" in answer:
            self._version_of(answer)
            raise wire.error_from_wire(answer["error"])
        if "lost" in answer:
            raise self._unavailable(str(answer["lost"]))
        self._version_of(answer)
        return answer

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.lost:
            return connection
        async with self._connecting:  # concurrent first calls share one connection
            if self._connection is None or self._connection.lost:
                self._connection = await self._connect()
                self._connections += 1  # perhaps another owner: nothing read before holds
                self._version = (self._connections, -1)
            return self._connection

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(self._path)
        except OSError as exc:
            raise self._unavailable(f"cannot connect ({exc.strerror or exc})") from None
        try:
            secret = self._secret
            if secret is None:
                secret = handshake.read_secret(handshake.key_path(self._path))
            await handshake.prove(reader, writer, secret)
        except (OSError, asyncio.IncompleteReadError, handshake.Refused) as exc:
            writer.close()
            reason = (
                "it refused this client's secret"
                if isinstance(exc, asyncio.IncompleteReadError)
                else str(exc)
            )
            raise self._unavailable(f"authentication failed: {reason}") from None
        except BaseException:
            writer.close()
            raise
        return _Connection(reader, writer, self._max_frame)


class _Connection:
    """One authenticated connection: requests written with ids, answers routed back to
    their callers by a reader task."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_frame = max_frame
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Queue[wire.Wire]] = {}
        self.lost = ""
        self._reading = asyncio.create_task(self._read(), name="index-owner-answers")

    async def call(
        self, op: str, args: list[object], deadline: asyncio.Timeout, per_part: float
    ) -> wire.Wire:
        """The final answer (``ok``, ``error`` or ``lost``), parts of a long one joined
        (``deadline`` moved ``per_part`` seconds on at each)."""
        if self.lost:
            return {"lost": self.lost}
        number = next(self._ids)
        answers: asyncio.Queue[wire.Wire] = asyncio.Queue()
        self._waiting[number] = answers
        try:
            request = wire.dumps({"id": number, "op": op, "args": args})
            try:
                write_frame(self._writer, request, self._max_frame)
            except FrameTooLarge as exc:
                raise InvalidInput(f"too large for the index owner: {exc}") from None
            await self._writer.drain()
            parts: list[object] = []
            while "part" in (answer := await answers.get()):
                parts.extend(answer["part"])
                deadline.reschedule(asyncio.get_running_loop().time() + per_part)
            if parts and "ok" in answer:
                answer = {**answer, "ok": parts + answer["ok"]}
            return answer
        except ConnectionError as exc:
            self.lost = self.lost or f"connection lost ({exc.strerror or exc})"
            self._writer.close()  # the next call connects anew
            return {"lost": self.lost}
        finally:
            del self._waiting[number]

    async def _read(self) -> None:
        reason = "the owner closed the connection"
        try:
            while True:
                answer = wire.loads(await read_frame(self._reader, self._max_frame))
                waiting = self._waiting.get(answer["id"])
                if waiting is not None:  # else: its caller gave up (timed out, cancelled)
                    waiting.put_nowait(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            reason = "this client is closed"
        except (FrameTooLarge, ValueError, KeyError, TypeError) as exc:
            reason = f"unreadable answer ({exc})"
        finally:
            self.lost = reason
            self._writer.close()
            for waiting in self._waiting.values():
                waiting.put_nowait({"lost": reason})

    async def close(self) -> None:
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
