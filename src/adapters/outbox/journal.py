"""The outbox file: a durable, ordered queue of conversation writes in SQLite.

Blocking: call it from a worker thread (``asyncio.to_thread``). One connection,
serialised by a lock, so any thread may call any method.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
from pathlib import Path

import attrs

from adapters.outbox.codec import decode_messages, decode_session, encode_messages, encode_session
from rag_core.conversations import Conversation, Message

# AUTOINCREMENT: a sequence number is never reused, even after the newest row is
# deleted, so "higher seq" always means "accepted later".
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    session_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    session TEXT,
    parked TEXT
)
"""


class Kind(enum.StrEnum):
    CREATE = "create"  # payload: a session created locally, to create upstream first
    MESSAGES = "messages"  # payload: a batch of messages to append


@attrs.frozen(slots=True)
class Entry:
    """One pending write. ``session`` is the session as last known when the entry
    was written (its owner, for ownership checks after a restart), if it was known."""

    seq: int
    kind: Kind
    session_id: str
    messages: tuple[Message, ...] = ()
    session: Conversation | None = None


class Journal:
    """Pending writes in ``path`` (created with its folder if missing, mode 0600).

    Every write is committed before it returns, in WAL mode with
    ``synchronous=FULL``: once a method returns, the write survives a process
    crash and a power loss. Entries come back in the order they were added.
    A parked entry (one that failed for a reason other than an outage) stays in
    the file, out of the queue, for an operator to inspect.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Users' messages: readable by the service alone (SQLite gives its -wal and
        # -shm files the mode of the database file).
        path.touch(mode=0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise RuntimeError(f"the outbox file {path} cannot use WAL (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def add_messages(
        self, session_id: str, messages: list[Message], session: Conversation | None
    ) -> int:
        """Queue a batch; returns how many entries are pending."""
        snapshot = encode_session(session) if session is not None else None
        return self._add(Kind.MESSAGES, session_id, encode_messages(messages), snapshot)

    def add_session(self, session: Conversation) -> int:
        """Queue the creation of a session; returns how many entries are pending."""
        return self._add(Kind.CREATE, session.id, encode_session(session), None)

    def first(self) -> Entry | None:
        """The oldest pending entry."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, kind, session_id, payload, session FROM outbox"
                " WHERE parked IS NULL ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else _entry(row)

    def entries(self) -> list[Entry]:
        """Every pending entry, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, session_id, payload, session FROM outbox"
                " WHERE parked IS NULL ORDER BY seq"
            ).fetchall()
        return [_entry(row) for row in rows]

    def messages_of(self, session_id: str) -> list[Message]:
        """The pending messages of one session, in the order they were queued."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM outbox WHERE parked IS NULL AND kind = ? AND session_id = ?"
                " ORDER BY seq",
                (Kind.MESSAGES.value, session_id),
            ).fetchall()
        return [message for (payload,) in rows for message in decode_messages(payload)]

    def remove(self, seq: int) -> int:
        """Delete a replayed entry; returns how many are pending."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            return self._count()

    def park(self, seq: int, reason: str) -> int:
        """Take an entry out of the queue, keeping it; returns how many are pending."""
        with self._lock:
            self._db.execute("UPDATE outbox SET parked = ? WHERE seq = ?", (reason, seq))
            return self._count()

    def pending(self) -> int:
        with self._lock:
            return self._count()

    def parked(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM outbox WHERE parked IS NOT NULL")
            return int(row.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _add(self, kind: Kind, session_id: str, payload: str, session: str | None) -> int:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, session_id, payload, session) VALUES (?, ?, ?, ?)",
                (kind.value, session_id, payload, session),
            )
            return self._count()

    def _count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM outbox WHERE parked IS NULL").fetchone()
        return int(row[0])


def _entry(row: tuple[int, str, str, str, str | None]) -> Entry:
    seq, kind, session_id, payload, session = row
    if kind == Kind.CREATE:
        return Entry(seq, Kind.CREATE, session_id, session=decode_session(payload))
    snapshot = decode_session(session) if session is not None else None
    return Entry(seq, Kind.MESSAGES, session_id, tuple(decode_messages(payload)), snapshot)
