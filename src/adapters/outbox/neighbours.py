"""The outbox files of the host that this process does not hold, read, never written."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


class Neighbours:
    """What outbox files held by other processes (or by none: orphans not adopted
    yet) hold, through read-only connections kept open.

    Blocking; one thread at a time. A file that cannot be read (just created, no
    table yet; damaged) holds nothing.
    """

    def __init__(self) -> None:
        self._connections: dict[Path, sqlite3.Connection] = {}

    def earliest(self, session_id: str, paths: Iterable[Path]) -> int | None:
        """The lowest acceptance key of a pending entry of the session in ``paths``
        (None: there is none)."""
        keys = [
            key
            for path in paths
            if (key := self._scalar(path, _EARLIEST, (session_id,))) is not None
        ]
        return min(keys, default=None)

    def has_entries(self, path: Path) -> bool:
        """Whether the file holds any entry, pending or parked."""
        return bool(self._scalar(path, "SELECT EXISTS (SELECT 1 FROM outbox)", ()))

    def forget(self, path: Path) -> None:
        """Stop reading ``path`` (this process now holds it)."""
        if (connection := self._connections.pop(path, None)) is not None:
            connection.close()

    def close(self) -> None:
        for path in list(self._connections):
            self.forget(path)

    def _scalar(self, path: Path, query: str, args: tuple[str, ...]) -> int | None:
        try:
            row = self._connection(path).execute(query, args).fetchone()
        except sqlite3.Error as exc:  # no table yet; or damaged: its turns must not block
            log.debug("outbox file %s not readable (%s)", path, exc)
            self.forget(path)
            return None
        return None if row[0] is None else int(row[0])

    def _connection(self, path: Path) -> sqlite3.Connection:
        connection = self._connections.get(path)
        if connection is None:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            connection = sqlite3.connect(
                uri, uri=True, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA busy_timeout=5000")
            self._connections[path] = connection
        return connection


_EARLIEST = "SELECT min(accepted) FROM outbox WHERE parked IS NULL AND session_id = ?"
