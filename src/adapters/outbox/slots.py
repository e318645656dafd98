"""Which outbox file is whose: one file per process, claimed for as long as it is open.

Slot 0 is the configured file (``outbox.db``), slot n its sibling ``outbox-n.db``. A
slot belongs to whoever holds an exclusive ``flock`` on its lock file
(``outbox.db.lock``): taken without waiting, given back by :meth:`Claim.release` or by
the OS when the process ends, however it ends (SIGKILL included). A slot whose lock is
free belongs to nobody: a starting process may claim it as its own, and what its file
still holds is an orphan's, for a live process to adopt. No worker index is needed, so
a replacement process, or a smaller or larger number of them, just works.

The lock is on a file of its own, not the database file: SQLite's POSIX locks on that
one are dropped by any ``close`` of it in the process.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
from pathlib import Path


def slot_path(base: Path, slot: int) -> Path:
    """The outbox file of ``slot``: ``base`` itself for slot 0, then ``<stem>-<slot><suffix>``."""
    return base if slot == 0 else base.with_name(f"{base.stem}-{slot}{base.suffix}")


def slot_paths(base: Path) -> list[Path]:
    """The outbox files of every slot that has one, slot 0 first."""
    pattern = re.compile(rf"{re.escape(base.stem)}-([1-9][0-9]*){re.escape(base.suffix)}")
    found: dict[int, Path] = {0: base} if base.exists() else {}
    try:
        with os.scandir(base.parent) as entries:
            for entry in entries:
                if match := pattern.fullmatch(entry.name):
                    found[int(match[1])] = Path(entry.path)
    except FileNotFoundError:
        return []
    return [found[slot] for slot in sorted(found)]


class Claim:
    """A slot held by this process, until :meth:`release` (idempotent)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def try_claim(path: Path) -> Claim | None:
    """Hold the slot of the outbox file ``path``, or None at once if a process holds it."""
    fd = os.open(path.with_name(f"{path.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return Claim(path, fd)


def claim_free(base: Path) -> Claim:
    """Hold the first free slot (creating ``base``'s folder if missing)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for slot in itertools.count():
        if (claim := try_claim(slot_path(base, slot))) is not None:
            return claim
    raise AssertionError("unreachable")  # pragma: no cover
