"""Which outbox files of the host have pending entries, seen in one ``listdir``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class PendingMarks:
    """An empty file per outbox file that has pending entries, named as it, in the
    folder ``<stem>.pending`` beside ``base`` (created, mode 0700, if missing).

    Whoever holds an outbox file keeps its mark: set before an entry is committed,
    cleared after the last pending one is replayed or parked, checked again whenever
    the file is opened or adopted. So a file without a mark has nothing pending (a
    crash can only leave a mark too many), and a process learns that no other file
    holds anything, the usual case, without opening any.
    """

    def __init__(self, base: Path) -> None:
        self._dir = base.with_suffix(".pending")
        self._dir.mkdir(mode=0o700, exist_ok=True)

    def mark(self, path: Path) -> None:
        os.close(os.open(self._dir / path.name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))

    def clear(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._dir / path.name).unlink()

    def marked(self) -> set[str]:
        """The names of the outbox files marked."""
        return set(os.listdir(self._dir))
