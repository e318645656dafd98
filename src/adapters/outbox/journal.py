"""One outbox file: a durable, ordered queue of conversation writes in SQLite.

Blocking: call it from a worker thread (``asyncio.to_thread``). One connection,
serialised by a lock, so any thread may call any method.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
from collections.abc import Collection
from pathlib import Path

import attrs

from adapters.outbox.codec import decode_messages, decode_session, encode_messages, encode_session
from rag_core.conversations import Conversation, Message

# AUTOINCREMENT: a sequence number is never reused, even after the newest row is
# deleted, so "higher seq" always means "accepted later" within the file. ``accepted``
# orders entries across the files of a host (adapters.outbox.order); the files written
# before it existed get their seq (below every key handed out since).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    session_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    session TEXT,
    parked TEXT,
    accepted INTEGER
)
"""
_COLUMNS = "seq, kind, session_id, payload, session, accepted"


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
    accepted: int = 0  # its place in the host's order of acceptance
    file: Path | None = None  # the journal it is in


class Journal:
    """Pending writes in ``path`` (created with its folder if missing, mode 0600).

    Every write is committed before it returns, in WAL mode with
    ``synchronous=FULL``: once a method returns, the write survives a process
    crash and a power loss. Entries come back in the order they were accepted (the
    ``accepted`` key each was added with). A parked entry (one that failed for a
    reason other than an outage) stays in the file, out of the queue, for an operator
    to inspect.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
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
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def add_messages(
        self,
        session_id: str,
        messages: list[Message],
        session: Conversation | None,
        accepted: int,
    ) -> int:
        """Queue a batch; returns how many entries are pending."""
        snapshot = encode_session(session) if session is not None else None
        payload = encode_messages(messages)
        return self._add(Kind.MESSAGES, session_id, payload, snapshot, accepted)

    def add_session(self, session: Conversation, accepted: int) -> int:
        """Queue the creation of a session; returns how many entries are pending."""
        return self._add(Kind.CREATE, session.id, encode_session(session), None, accepted)

    def first(self, excluding: Collection[str] = ()) -> Entry | None:
        """The oldest pending entry of a session not in ``excluding``."""
        skipped = list(excluding)
        marks = ", ".join("?" * len(skipped))
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE parked IS NULL"
                f" AND session_id NOT IN ({marks}) ORDER BY accepted, seq LIMIT 1",
                skipped,
            ).fetchone()
        return None if row is None else self._entry(row)

    def entries(self) -> list[Entry]:
        """Every pending entry, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE parked IS NULL ORDER BY accepted, seq"
            ).fetchall()
        return [self._entry(row) for row in rows]

    def batches_of(self, session_id: str) -> list[tuple[int, list[Message]]]:
        """The pending batches of one session with their acceptance keys, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT accepted, payload FROM outbox"
                " WHERE parked IS NULL AND kind = ? AND session_id = ? ORDER BY accepted, seq",
                (Kind.MESSAGES.value, session_id),
            ).fetchall()
        return [(accepted, decode_messages(payload)) for accepted, payload in rows]

    def last_accepted(self) -> int:
        """The highest acceptance key in the file, parked entries included (0: none)."""
        with self._lock:
            row = self._db.execute("SELECT max(accepted) FROM outbox").fetchone()
        return int(row[0] or 0)

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

    def _add(
        self, kind: Kind, session_id: str, payload: str, session: str | None, accepted: int
    ) -> int:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, session_id, payload, session, accepted)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind.value, session_id, payload, session, accepted),
            )
            return self._count()

    def _migrate(self) -> None:
        """Give the entries of a file from before the acceptance keys their seq as key
        (the column too, if the file has none), in one transaction."""
        if "accepted" in self._columns() and not self._unkeyed():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if "accepted" not in self._columns():  # unless another process just added it
                self._db.execute("ALTER TABLE outbox ADD COLUMN accepted INTEGER")
            self._db.execute("UPDATE outbox SET accepted = seq WHERE accepted IS NULL")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _unkeyed(self) -> bool:
        row = self._db.execute("SELECT EXISTS (SELECT 1 FROM outbox WHERE accepted IS NULL)")
        return bool(row.fetchone()[0])

    def _columns(self) -> set[str]:
        return {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}

    def _entry(self, row: tuple[int, str, str, str, str | None, int]) -> Entry:
        seq, kind, session_id, payload, session, accepted = row
        if kind == Kind.CREATE:
            created = decode_session(payload)
            return Entry(seq, Kind.CREATE, session_id, (), created, accepted, self.path)
        snapshot = decode_session(session) if session is not None else None
        messages = tuple(decode_messages(payload))
        return Entry(seq, Kind.MESSAGES, session_id, messages, snapshot, accepted, self.path)

    def _count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM outbox WHERE parked IS NULL").fetchone()
        return int(row[0])
