"""The order in which the outbox accepted entries, across the processes of one host."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

_WIDTH = 8  # bytes of the counter, big-endian


class AcceptanceOrder:
    """Hands out keys that increase across every process sharing ``path`` (created
    with mode 0600 if missing): each key is the time in nanoseconds, or one more than
    the last key handed out on the host if the clock is behind it (a step back).

    The last key is 8 bytes in ``path``, read and rewritten under an exclusive
    ``flock`` (held for the two system calls). Not synced: after a power loss it may be
    behind, so whoever opens an outbox file raises it with :meth:`at_least` to the keys
    the file holds. Blocking (a few microseconds); one thread at a time.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def next(self) -> int:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            key = max(time.time_ns(), self._last() + 1)
            os.pwrite(self._fd, key.to_bytes(_WIDTH, "big"), 0)
            return key
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def at_least(self, key: int) -> None:
        """Never hand out ``key`` or a smaller one."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if key > self._last():
                os.pwrite(self._fd, key.to_bytes(_WIDTH, "big"), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)

    def _last(self) -> int:
        raw = os.pread(self._fd, _WIDTH, 0)
        return int.from_bytes(raw, "big") if len(raw) == _WIDTH else 0
