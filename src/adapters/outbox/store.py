"""A ConversationStore decorator that keeps writes durably on local disk while the
database is unavailable, and writes them to it, in order, once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import TypeVar

from adapters.outbox.chat_view import chat_view
from adapters.outbox.holdings import Holdings
from adapters.outbox.journal import Entry, Kind
from adapters.outbox.recall import Recall
from adapters.outbox.replay import replay
from adapters.system import SystemClock
from rag_core.conversations import Conversation, Message, check_appended
from rag_core.errors import DependencyUnavailable
from rag_core.ports import Clock, ConversationStore, IdGenerator

T = TypeVar("T")
log = logging.getLogger(__name__)


class OutboxConversationStore:
    """Implements :class:`rag_core.ports.ConversationStore` around ``inner``.

    ``append`` never loses a batch to an outage: when ``inner`` raises
    DependencyUnavailable, or gives no answer within ``timeout`` seconds (a last-resort
    deadline on every call to ``inner``), the batch is committed to this process's
    SQLite file (``path`` or a sibling, below; WAL, ``synchronous=FULL``) and
    ``append`` returns normally. While any entry is pending, new batches of every
    session queue behind it, so the database gets them in the order they were
    accepted. :meth:`flush` replays entries oldest first and deletes each once
    written; replays are idempotent (message ids), so a crash between write and
    delete, or a timed-out write that lands later, cannot duplicate a message. A new
    instance on the same ``path`` picks up what an earlier process left. Batches are
    validated before they are queued (InvalidInput, as the adapters do); an entry that
    fails at replay for another reason than an outage (its session deleted meanwhile)
    is parked: kept in the file, logged, counted.

    Every other call goes to ``inner``. While entries are pending, reads and writes
    flush first, so a read never misses a turn queued here, and raise
    DependencyUnavailable when that cannot finish: in an outage this face answers 503,
    never a partial history. :meth:`chat_view` is the face that keeps chat answering.

    ``session_ids`` gives the ids of sessions the chat view creates in an outage
    (without it, creating a session needs the database); they are created in
    ``inner`` with that id on replay (``create_session_with_id``).

    Any number of processes may share ``path``'s folder. Each claims a file of its own
    for as long as it is open (:mod:`~adapters.outbox.slots`: ``path`` itself when it
    is free, so a single process works as it always did, else ``outbox-1.db``, ...),
    and adopts the files nobody holds that still have entries (a process that died, a
    slot beyond a smaller number of processes) at start-up and from :meth:`run`
    (:meth:`adopt`), replaying them with its own until they are empty, then giving
    them back. An entry never moves between files and only a file's holder replays it,
    so a crash loses nothing and no entry is replayed by two processes. Entries carry
    the host-wide order in which they were accepted: a process replays what it holds
    in that order, and a session's entry waits while another process holds an earlier
    one of that session (a new batch of it queues behind rather than going straight
    through), so a session's turns reach ``inner`` in order whichever process took
    them. :meth:`pending` and :meth:`parked` count what this process holds; its reads
    flush only that (another process's turns arrive when it replays them).
    """

    def __init__(
        self,
        inner: ConversationStore,
        path: Path,
        *,
        dependency: str,
        session_ids: IdGenerator | None = None,
        clock: Clock | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._inner = inner
        self._dependency = dependency
        self._ids = session_ids
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._holdings = Holdings(path)
        # Its own thread: journal writes must not wait behind database calls hung in
        # the default executor (a black-holed connection blocks its thread for good).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._lock = asyncio.Lock()
        self._closed = False
        self._recall = Recall()
        try:
            adopted = self._holdings.adopt()
            entries = self._holdings.entries()
            self._parked = self._holdings.parked()
        except BaseException:
            self._holdings.close()
            self._executor.shutdown()
            raise
        self._pending = len(entries)
        self._remember(entries)
        log.info("outbox file %s (%d pending)%s", self.path, self._pending, _adopted_note(adopted))

    @property
    def path(self) -> Path:
        """The outbox file this process claimed (see :mod:`adapters.outbox.slots`)."""
        return self._holdings.path

    def pending(self) -> int:
        """How many entries wait to be written (for health and metrics)."""
        return self._pending

    def parked(self) -> int:
        """How many entries failed for another reason than an outage (kept in the file)."""
        return self._parked

    @property
    def recall(self) -> Recall:
        """What is known here of sessions, for the chat view's fallbacks."""
        return self._recall

    def chat_view(self) -> ConversationStore:
        """The face for ChatService: chat goes on during an outage (see ChatView)."""
        return chat_view(self)

    async def flush(self) -> int:
        """Write pending entries to ``inner``, earliest accepted first; returns how
        many were written. Stops at the first DependencyUnavailable. A session whose
        earlier entry is in a file another process holds waits (its next entries too)
        until a later flush. One flush at a time."""
        async with self._lock:
            flushed = 0
            waiting: set[str] = set()  # sessions behind an entry held elsewhere
            holdings = self._holdings
            while (entry := await self._in_journal(holdings.first, waiting)) is not None:
                if await self._in_journal(holdings.earlier_elsewhere, entry):
                    waiting.add(entry.session_id)
                    continue
                try:
                    await replay(entry, self._inner, self._call)
                except DependencyUnavailable as exc:
                    log.info("outbox flush stopped: %s (%d pending)", exc, self._pending)
                    return flushed
                except Exception as exc:
                    reason = type(exc).__name__
                    log.error(
                        "outbox entry %d (%s, session %s) parked after %s; kept in the file",
                        *(entry.seq, entry.kind.value, entry.session_id, reason),
                        exc_info=True,
                    )
                    self._pending = await self._in_journal(holdings.park, entry, reason)
                    self._parked += 1
                else:
                    self._pending = await self._in_journal(holdings.remove, entry)
                    flushed += 1
                if entry.kind is Kind.CREATE:
                    self._recall.unpin(entry.session_id)
            if waiting:
                log.info("outbox: %d sessions wait for another process's turns", len(waiting))
            # Also repairs a count left stale by a cancelled write.
            self._pending = await self._in_journal(holdings.settle)
            return flushed

    async def adopt(self) -> int:
        """Hold the outbox files of the host that nobody holds but that have entries
        (a process that died, a slot beyond a smaller number of processes), to replay
        them with this process's own; returns how many pending entries came. Done at
        start-up and by :meth:`run`. Files are given back once empty."""
        async with self._lock:
            if self._closed:
                return 0
            adopted = await self._in_journal(self._holdings.adopt)
            if not adopted:
                return 0
            entries = await self._in_journal(self._holdings.entries)
            self._parked = await self._in_journal(self._holdings.parked)
            came = len(entries) - self._pending
            self._pending = len(entries)
            self._remember([entry for entry in entries if entry.file in adopted])
            log.warning("outbox adopted %d pending entries%s", came, _adopted_note(adopted))
            return came

    async def run(self, interval: float = 5.0) -> None:
        """Every ``interval`` seconds until cancelled: adopt orphaned outbox files,
        and flush while entries are pending."""
        while True:
            try:
                await self.adopt()
                if self._pending:
                    await self.flush()
            except Exception:
                log.exception("outbox flush failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Close the file (idempotent); pending entries stay in it for the next start."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._in_journal(self._holdings.close)
        await asyncio.to_thread(self._executor.shutdown)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        batch = list(messages)
        check_appended(session_id, batch)
        if not batch:  # nothing to keep; only the session's existence is checked
            await self._call(self._inner.append(session_id, batch))
            return
        if not self._pending and not await self._held_elsewhere(session_id):
            try:
                await self._call(self._inner.append(session_id, batch))
            except DependencyUnavailable as exc:
                log.warning("%s; the turn of session %s goes to the outbox", exc, session_id)
            else:
                self._recall.appended(session_id, batch, self._clock.now())
                return
        snapshot = self._recall.session(session_id)
        add = self._holdings.add_messages
        self._pending = await self._in_journal(add, session_id, batch, snapshot)
        self._recall.appended(session_id, batch, self._clock.now())

    async def create_session(self, user_id: str, title: str) -> Conversation:
        session = await self._call(self._inner.create_session(user_id, title))
        self._recall.saw_sessions([session])
        return session

    async def create_session_with_id(
        self, session_id: str, user_id: str, title: str
    ) -> Conversation:
        await self._drained()
        session = await self._call(self._inner.create_session_with_id(session_id, user_id, title))
        self._recall.saw_sessions([session])
        return session

    async def get_session(self, session_id: str) -> Conversation | None:
        await self._drained()
        session = await self._call(self._inner.get_session(session_id))
        if session is not None:
            self._recall.saw_sessions([session])
        return session

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        await self._drained()
        sessions = await self._call(self._inner.list_sessions(user_id, limit, offset))
        self._recall.saw_sessions(sessions)
        return sessions

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        await self._drained()
        found = await self._call(self._inner.messages(session_id, limit))
        if limit != 0:
            self._recall.saw_messages(session_id, found)
        return found

    async def rename(self, session_id: str, title: str) -> Conversation:
        await self._drained()
        session = await self._call(self._inner.rename(session_id, title))
        self._recall.renamed(session)
        return session

    async def delete_session(self, session_id: str) -> None:
        await self._drained()
        await self._call(self._inner.delete_session(session_id))
        self._recall.forget(session_id)

    async def delete_user_history(self, user_id: str) -> int:
        await self._drained()
        deleted = await self._call(self._inner.delete_user_history(user_id))
        self._recall.forget_user(user_id)
        return deleted

    async def probe(self) -> None:
        await self._call(self._inner.probe())

    # What the chat view falls back on.

    async def known_messages(self, session_id: str) -> list[Message]:
        """The session's newest messages seen here, then its pending ones."""
        known = {m.id: m for m in self._recall.messages(session_id)}
        if self._pending:
            for message in await self._in_journal(self._holdings.messages_of, session_id):
                known.setdefault(message.id, message)
        return list(known.values())

    async def create_locally(
        self, user_id: str, title: str, cause: DependencyUnavailable
    ) -> Conversation:
        """A session created in the outbox, to be created in the database first on
        replay. Re-raises ``cause`` if no ``session_ids`` were given."""
        if self._ids is None:
            raise cause
        now = self._clock.now().astimezone(UTC)
        session = Conversation(self._ids.new_id(), user_id, title, now, now)
        self._pending = await self._in_journal(self._holdings.add_session, session)
        self._recall.pin(session)
        log.warning("%s; session %s created in the outbox", cause, session.id)
        return session

    def _remember(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.kind is Kind.CREATE and entry.session is not None:
                self._recall.pin(entry.session)
            elif entry.session is not None:
                self._recall.saw_sessions([entry.session])

    async def _held_elsewhere(self, session_id: str) -> bool:
        """Whether another process's file (or an orphan) has a pending entry of the
        session: then its new batch goes behind it, not straight to ``inner``."""
        if not self._holdings.elsewhere():  # one listdir: the usual case, no thread hop
            return False
        return await self._in_journal(self._holdings.held_elsewhere, session_id)

    async def _drained(self) -> None:
        if not self._pending:
            return
        # Bounded: a long backlog is not the reader's to wait for. What the flush
        # wrote before the deadline stays written.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self.flush()
        if self._pending:
            raise DependencyUnavailable(
                self._dependency, "earlier writes are waiting in the outbox", retry_after=1.0
            )

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError as exc:
            raise DependencyUnavailable(self._dependency, "timed out") from exc

    async def _in_journal(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


def _adopted_note(adopted: list[Path]) -> str:
    return f"; adopted {', '.join(p.name for p in adopted)}" if adopted else ""
