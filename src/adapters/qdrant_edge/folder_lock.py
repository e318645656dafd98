"""An exclusive lock on an index folder, held from open to close.

The engine locks its write-ahead log only once a shard exists and is loaded; this
lock also covers a folder whose shard is not created yet, and fails at open
rather than at first use. ``flock`` locks belong to the open file, so a second
open in the same process conflicts too, and the kernel drops the lock when the
process dies (no stale lock after a crash). POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from adapters.index_lock import IndexLocked
from rag_core.errors import DependencyUnavailable


class FolderLock:
    """Holds ``lock_file`` locked; :meth:`release` is idempotent."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, lock_file: Path, folder: Path) -> FolderLock:
        """Lock ``lock_file`` (created if missing); raises IndexLocked naming ``folder``."""
        try:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DependencyUnavailable("qdrant", type(exc).__name__) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexLocked(folder) from exc
        except OSError as exc:
            os.close(fd)
            raise DependencyUnavailable("qdrant", type(exc).__name__) from exc
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
