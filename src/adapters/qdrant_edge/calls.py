"""Runs the engine's blocking calls and translates what they raise.

qdrant-edge-py is synchronous and thread-safe (its shard may be used from any
thread, concurrently). Measured on 0.9.0: ``update``, ``flush``, ``optimize``,
``load`` and ``close`` release the GIL, but ``query`` and ``scroll`` keep it for
the whole call, so whichever thread runs a search, the event loop waits for that
one call (under a millisecond at 241 chunks, about 1.5 ms at 10k x 1536).

Hence two kinds of read. A short one (a search, the neighbours of a few passages)
runs :meth:`EngineCalls.inline`, on the event loop, in its caller's own step: on a
thread it would block the loop just the same, and first wait for the GIL to come
back from the busy loop -- up to the 5 ms switch interval per call, one call at a
time. At 50 users that hand-off was most of the service's latency above the floor
(a search took 85 ms p50 for a 2 ms engine call; inline, 3 ms), and batching the
searches that queued up cost two turns of a congested loop (at 200 users 190 ms p50
for a 1 ms search; bench/README.md, P14). A long read (every chunk, for a re-index or
a page) runs on the one reader thread, which hands the GIL over before its call, so
the loop is not frozen for the whole scroll. Writes run on a writer thread of their
own, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from adapters.index_lock import IndexLocked
from rag_core.errors import DependencyUnavailable, IndexMismatch, RagError

T = TypeVar("T")

# The engine raises plain Exception; these messages reject a request whose vectors do
# not fit the shard, i.e. the shard is not laid out as the adapter expects.
_LAYOUT_ERRORS = ("Vector dimension error", "Not existing vector name", "Wrong input")
# fs2's try_lock on the write-ahead log: another process or object holds the shard.
_WAL_HELD = "WouldBlock"


class EngineCalls:
    """Short reads on the event loop, long reads on one dedicated thread, writes on
    another, each in submission order.

    The single writer keeps writes in order (a delete never overtakes its upsert),
    also when a caller stops waiting: a write already running completes, one still
    queued when its caller is cancelled is dropped. Reads do not wait for writes,
    except for an :meth:`exclusive` one.
    """

    def __init__(self, shard_dir: Path) -> None:
        self._shard_dir = shard_dir
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="qdrant-edge-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="qdrant-edge-write")
        self._reads_in_flight = 0
        self._no_reads = asyncio.Event()
        self._no_reads.set()
        self._exclusive_in_flight = 0
        self._reads_allowed = asyncio.Event()
        self._reads_allowed.set()
        self._closed = False
        self._writes = 0

    @property
    def writes(self) -> int:
        """How many writes have finished (or failed): what was read when it was ``n``
        may be out of date once it is not."""
        return self._writes

    async def read(self, call: Callable[[], T]) -> T:
        await self._reads_allowed.wait()
        self._reads_in_flight += 1
        self._no_reads.clear()
        try:
            return await self._run(self._reader, call)
        finally:
            self._reads_in_flight -= 1
            if not self._reads_in_flight:
                self._no_reads.set()

    async def inline(self, call: Callable[[], T]) -> T:
        """A short read, run on the event loop (see the module's doc); it waits, on
        the loop, for an :meth:`exclusive` write like any read."""
        await self._reads_allowed.wait()
        if self._closed:
            raise DependencyUnavailable("qdrant", "the index is closed")
        return self._guarded(call)

    async def write(self, call: Callable[[], T]) -> T:
        return await self._run(self._writer, self._counted(call))

    async def exclusive(self, call: Callable[[], T]) -> T:
        """A write no read may overlap: reads wait on the event loop until it is done.

        For ``optimize``, which locks the segments for most of its run (0.3-1.4 s
        measured): a search blocked on them would hold the GIL meanwhile and
        freeze the whole process, event loop included.
        """
        self._exclusive_in_flight += 1
        self._reads_allowed.clear()
        try:
            await self._no_reads.wait()
            job = self._submit(self._writer, self._counted(call))
        except BaseException:
            self._end_exclusive()
            raise
        # Reads resume when the engine is done, not when a cancelled caller stops waiting.
        job.add_done_callback(lambda _: self._end_exclusive())
        return await asyncio.shield(job)

    def _end_exclusive(self) -> None:
        self._exclusive_in_flight -= 1
        if not self._exclusive_in_flight:
            self._reads_allowed.set()

    def shutdown(self) -> None:
        """Stop accepting calls; the threads end once their queued calls are done."""
        self._closed = True
        self._reader.shutdown(wait=False)
        self._writer.shutdown(wait=False)

    async def _run(self, thread: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        return await self._submit(thread, call)

    def _submit(self, thread: ThreadPoolExecutor, call: Callable[[], T]) -> asyncio.Future[T]:
        try:
            return asyncio.get_running_loop().run_in_executor(thread, self._translated, call)
        except RuntimeError as exc:  # shut down
            raise DependencyUnavailable("qdrant", "the index is closed") from exc

    def _counted(self, call: Callable[[], T]) -> Callable[[], T]:
        def counted() -> T:
            try:
                return call()
            finally:  # on the writer thread, once the engine is done (cancelled callers too)
                self._writes += 1

        return counted

    def _translated(self, call: Callable[[], T]) -> T:
        time.sleep(0)  # releases the GIL: a waiting event loop runs before this call
        return self._guarded(call)

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except RagError:
            raise
        except Exception as exc:
            raise translate(exc, self._shard_dir) from exc


def translate(exc: Exception, shard_dir: Path) -> RagError:
    """The core's error for what the engine raised."""
    message = str(exc)
    if _WAL_HELD in message:
        return IndexLocked(shard_dir)
    if isinstance(exc, ValueError) or any(marker in message for marker in _LAYOUT_ERRORS):
        return IndexMismatch(f"Qdrant Edge rejected a request on {shard_dir}: {message[:200]}")
    return DependencyUnavailable("qdrant", type(exc).__name__)
