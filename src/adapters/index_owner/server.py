"""The owner's side: one VectorIndex served over a Unix socket to the worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from adapters.index_owner import handshake, wire
from adapters.index_owner.frames import MAX_FRAME, FrameTooLarge, read_frame, write_frame
from rag_core.errors import DependencyUnavailable, InvalidInput, RagError
from rag_core.ports import VectorIndex

log = logging.getLogger(__name__)

PART_ITEMS = 512  # chunks per frame of a long answer (chunks(), neighbourhood())
IN_FLIGHT = 256  # requests of one connection running at once; its next frame waits
WRITES = frozenset({"prepare", "upsert", "delete", "recreate", "after_deletes"})
"""The operations that change what the index holds: each counts in an answer's ``w``."""
HANDSHAKE_TIMEOUT = 5.0


async def serve_index(
    index: VectorIndex,
    path: Path,
    *,
    secret: bytes | None = None,
    after_deletes: Callable[[], Awaitable[None]] | None = None,
    ready: Callable[[], None] | None = None,
    max_frame: int = MAX_FRAME,
    part_items: int = PART_ITEMS,
) -> None:
    """Serve every :class:`~rag_core.ports.VectorIndex` call on ``index`` (and
    ``after_deletes``, e.g. EdgeIndex.compact) at the Unix socket ``path``, until
    cancelled; then stop listening, drop the connections and remove the socket (and the
    key file it wrote). ``index`` stays open: its opener closes it.

    ``secret``: what clients must prove (see :mod:`~adapters.index_owner.handshake`);
    None writes a new one to ``key_path(path)``, where :class:`RemoteIndex` reads it.
    The socket is bound under a temporary name, made 0600, listening, and only then
    renamed to ``path``, so a path that exists is one that answers; ``ready`` is called
    then. A stale socket at ``path`` is replaced; one that answers raises
    DependencyUnavailable (another owner listens there).

    Each request runs in a task of its own, so concurrent searches reach ``index``
    together; answers go back in the order they finish. A write whose client goes away
    still runs to its end (the index may not stop halfway anyway), and only then counts
    in the ``w`` of later answers.
    """
    await _refuse_live_owner(path)
    key = handshake.key_path(path)
    wrote_key = secret is None
    secret = handshake.write_secret(key) if secret is None else secret
    owner = _Owner(index, secret, after_deletes, max_frame, part_items)
    listener = _listen(path)
    server = await asyncio.start_unix_server(owner.connection, sock=listener)
    try:
        if ready is not None:
            ready()
        await asyncio.Future()  # until cancelled
    finally:
        server.close()
        await owner.drop_all()
        _remove(path, *([key] if wrote_key else []))


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _refuse_live_owner(path: Path) -> None:
    if not await asyncio.to_thread(path.is_socket):
        return
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(path)
    except (OSError, TimeoutError):
        return  # stale: replaced
    writer.close()
    raise DependencyUnavailable("qdrant", f"another index owner listens at {path}")


def _listen(path: Path) -> socket.socket:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(temporary))
        os.chmod(temporary, 0o600)  # before listen(): until then, nobody can connect
        listener.listen(128)
        os.replace(temporary, path)
    except BaseException:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return listener


class _Owner:
    def __init__(
        self,
        index: VectorIndex,
        secret: bytes,
        after_deletes: Callable[[], Awaitable[None]] | None,
        max_frame: int,
        part_items: int,
    ) -> None:
        self._index = index
        self._secret = secret
        self._after_deletes = after_deletes
        self._max_frame = max_frame
        self._part_items = part_items
        self._connections: set[asyncio.Task[None]] = set()
        self._writes = 0

    async def drop_all(self) -> None:
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    await handshake.admit(reader, writer, self._secret)
            except (handshake.Refused, asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
                log.warning("index owner: refused a connection (%s)", type(exc).__name__)
                return
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # the owner stops (drop_all); ended, not cancelled, for asyncio's server
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        slots = asyncio.Semaphore(IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    request = wire.loads(await read_frame(reader, self._max_frame))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client went away
                except (FrameTooLarge, ValueError) as exc:
                    log.warning("index owner: dropped a connection: %s", exc)
                    return
                if not isinstance(request, dict) or not isinstance(request.get("id"), int):
                    log.warning("index owner: dropped a connection: not a request")
                    return
                await slots.acquire()
                task = asyncio.create_task(self._answer(request, writer))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            if running:  # the client is gone or the owner stops: nobody waits for these
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def _answer(self, request: wire.Wire, writer: asyncio.StreamWriter) -> None:
        number, op = request["id"], request.get("op")
        writing = isinstance(op, str) and op in WRITES
        # ``w``: the writes done before a read started, or up to and including a write:
        # what a client read when the answers said w is out of date once they say more.
        writes = self._writes
        try:
            if writing:
                self._writes += 1  # reads during the write are not kept either
                job = asyncio.ensure_future(self._call(op, request["args"]))
                job.add_done_callback(self._wrote)  # when the index is done, not its caller
                result = await asyncio.shield(job)
                writes = self._writes
            else:
                result = await self._call(op, request["args"])
            if isinstance(result, _Parts):
                items, size = result.items, self._part_items
                parts = [items[start : start + size] for start in range(0, len(items), size)]
                for part in parts[:-1]:
                    await self._send(writer, {"id": number, "part": part})
                last = parts[-1] if parts else []
                await self._send(writer, {"id": number, "ok": last, "w": writes})
            else:
                await self._send(writer, {"id": number, "ok": result, "w": writes})
        except ConnectionError:
            return  # the client went away: nobody to answer
        except Exception as exc:
            if not isinstance(exc, RagError):
                log.exception("index owner: %s failed", request.get("op"))
            if writing:  # a failed write may have changed some of what it was given
                writes = self._writes
            with contextlib.suppress(ConnectionError):
                error = wire.error_to_wire(exc)
                await self._send(writer, {"id": number, "error": error, "w": writes})

    def _wrote(self, _: asyncio.Future[object]) -> None:
        self._writes += 1

    async def _send(self, writer: asyncio.StreamWriter, message: dict[str, object]) -> None:
        if writer.is_closing():
            raise ConnectionResetError("the client went away")
        write_frame(writer, wire.dumps(message), self._max_frame)
        await writer.drain()

    async def _call(self, op: str, args: wire.Wire) -> object:
        index = self._index
        match op:
            case "search":
                return [
                    wire.passage_to_wire(p)
                    for p in await index.search(wire.query_from_wire(args[0]))
                ]
            case "neighbourhood":
                spans = [(str(d), int(first), int(last)) for d, first, last in args[0]]
                return _Parts([wire.chunk_to_wire(c) for c in await index.neighbourhood(spans)])
            case "chunks":
                ids = None if args[0] is None else [str(d) for d in args[0]]
                return _Parts([wire.chunk_to_wire(c) for c in await index.chunks(ids)])
            case "upsert":
                await index.upsert([wire.indexed_from_wire(item) for item in args[0]])
            case "delete":
                await index.delete([str(i) for i in args[0]])
            case "chunk_ids_by_document":
                grouped = await index.chunk_ids_by_document(args[0])
                return {document: sorted(ids) for document, ids in grouped.items()}
            case "count":
                return await index.count()
            case "probe":
                await index.probe()
            case "prepare":
                await index.prepare(args[0])
            case "recreate":
                await index.recreate(args[0])
            case "after_deletes":
                if self._after_deletes is not None:
                    await self._after_deletes()
            case _:
                raise InvalidInput(f"the index owner has no operation {op!r}")
        return None


class _Parts:
    """A list answer sent in frames of at most ``part_items`` items."""

    def __init__(self, items: list[object]) -> None:
        self.items = items
