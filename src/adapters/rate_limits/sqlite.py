"""GCRA state in a SQLite file that every worker process of one container shares.

With N worker processes, each counting alone would admit N times a policy's rate; all
of them open the same file (``DATA_DIR/rate-limits.db``) and count together. Separate
containers (replicas) have separate files and still count apart.

Each admitted hit is one short write transaction (``BEGIN IMMEDIATE``: read the key's
arrival, :func:`~adapters.rate_limits.gcra.decide`, write it back); a refused one only
reads. WAL mode, ``synchronous=OFF``: these are counts, and a crash losing the last
ones admits a few requests more, nothing worse. ``hit`` runs on the event loop, so it
must not block it long: a lock held by another process is waited for
``busy_timeout`` at most (50 ms), and then, as on any SQLite error (a damaged or
unwritable file), the request is admitted, erring towards admitting, with a warning
at most once a minute.

Times are the wall clock (``time.time``): monotonic clocks restart at boot, and the
file may outlive one. A wall clock can step back; ``decide`` clamps an arrival that
could not be legitimate, so a jump is harmless. A refilled key is forgotten when the
policy next admits one, and each policy keeps at most ``max_keys`` keys (past that the
oldest arrivals go, as in memory), counted in a table of their own so that bounding
costs no scan.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from adapters.rate_limits.gcra import NANOSECONDS, Rate, decide, nanoseconds

log = logging.getLogger(__name__)

FILENAME = "rate-limits.db"
"""The shared file's name in DATA_DIR."""

WARN_EVERY = 60.0
"""Seconds between two warnings that the store failed (and requests were admitted)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS arrivals (
    policy TEXT NOT NULL,
    key TEXT NOT NULL,
    arrival INTEGER NOT NULL,
    PRIMARY KEY (policy, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS arrivals_by_time ON arrivals (policy, arrival);
CREATE TABLE IF NOT EXISTS tracked (
    policy TEXT PRIMARY KEY,
    keys INTEGER NOT NULL
) WITHOUT ROWID;
"""


class SqliteArrivals:
    """Implements :class:`~adapters.rate_limits.gcra.Arrivals` in the SQLite file ``path``
    (created with its folder if missing, mode 0600).

    ``clock`` gives wall-clock seconds (tests pass a fake one). The connection is
    opened on the first hit, in the process that hits (so a store built before a
    fork is not shared with the children), and serialised by a lock (any thread may
    call). ``hit`` never raises for the file's sake; ``tracked_keys`` does.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 0.05,
    ) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._warned_at = -math.inf
        # Connections opened before a fork: never closed in the child (closing may
        # touch the parent's locks and WAL), only kept from the garbage collector.
        self._inherited: list[sqlite3.Connection] = []

    def hit(self, policy: str, key: str, rate: Rate, max_keys: int) -> float:
        with self._lock:
            try:
                db = self._connection()
                wait = _hit(db, policy, key, rate, max_keys, nanoseconds(self._clock()))
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc)
                return 0.0
        return wait / NANOSECONDS

    def tracked_keys(self, policy: str) -> int:
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT count(*) FROM arrivals WHERE policy = ?", (policy,))
                .fetchone()
            )
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            elif self._db is not None:
                self._inherited.append(self._db)
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        if self._db is not None:
            self._inherited.append(self._db)
            self._db = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite gives the -wal and -shm files the mode of the database file.
        self.path.touch(mode=0o600)
        db = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db, self._pid = db, os.getpid()
        return db

    def _failed(self, exc: Exception) -> None:
        if self._db is not None and self._db.in_transaction:
            # Its rollback failed too: drop the connection, not the others' lock.
            self._db.close()
            self._db = None
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(
                "rate limits: the shared store %s failed (%s: %s); admitting requests "
                "uncounted meanwhile (warned at most once a minute)",
                self.path,
                type(exc).__name__,
                exc,
            )


def _hit(db: sqlite3.Connection, policy: str, key: str, rate: Rate, max_keys: int, now: int) -> int:
    """One request; the wait in nanoseconds (0: admitted).

    A refusal writes nothing, so it needs no lock: the key is read first (a WAL reader
    never waits for the writer), and only an admission (or a clamp's correction) takes
    the write lock, reads again (another worker may have admitted meanwhile) and
    writes, in one transaction.
    A flood of refused requests thus never queues the workers behind one another.
    """
    decision = decide(_arrival(db, policy, key), now, rate)
    if decision.store is None:
        return decision.wait
    db.execute("BEGIN IMMEDIATE")
    try:
        forgotten = db.execute(
            "DELETE FROM arrivals WHERE policy = ? AND arrival <= ?", (policy, now)
        ).rowcount
        stored = _arrival(db, policy, key)
        decision = decide(stored, now, rate)
        added = 0
        if decision.store is not None:
            db.execute(
                "INSERT INTO arrivals (policy, key, arrival) VALUES (?, ?, ?) "
                "ON CONFLICT (policy, key) DO UPDATE SET arrival = excluded.arrival",
                (policy, key, decision.store),
            )
            added = int(stored is None)
        if forgotten or added:
            _recount(db, policy, added - forgotten, max_keys)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return decision.wait


def _arrival(db: sqlite3.Connection, policy: str, key: str) -> int | None:
    row = db.execute(
        "SELECT arrival FROM arrivals WHERE policy = ? AND key = ?", (policy, key)
    ).fetchone()
    return None if row is None else int(row[0])


def _recount(db: sqlite3.Connection, policy: str, change: int, max_keys: int) -> None:
    (keys,) = db.execute(
        "INSERT INTO tracked (policy, keys) VALUES (?1, max(?2, 0)) "
        "ON CONFLICT (policy) DO UPDATE SET keys = max(keys + ?2, 0) RETURNING keys",
        (policy, change),
    ).fetchone()
    if keys > max_keys:
        db.execute(
            "DELETE FROM arrivals WHERE policy = ?1 AND key IN "
            "(SELECT key FROM arrivals WHERE policy = ?1 ORDER BY arrival LIMIT ?2)",
            (policy, keys - max_keys),
        )
        db.execute("UPDATE tracked SET keys = ? WHERE policy = ?", (max_keys, policy))
