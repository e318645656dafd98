"""The outbox files one process holds: its own, and the orphans it adopted."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection
from pathlib import Path

from adapters.outbox.journal import Entry, Journal
from adapters.outbox.marks import PendingMarks
from adapters.outbox.neighbours import Neighbours
from adapters.outbox.order import AcceptanceOrder
from adapters.outbox.slots import Claim, claim_free, slot_paths, try_claim
from rag_core.conversations import Conversation, Message

log = logging.getLogger(__name__)


class Holdings:
    """The outbox files this process holds among the slots of ``base`` (see
    :mod:`adapters.outbox.slots`): its own, the first free slot, for as long as it
    is open; and the orphans it adopted (slot files nobody holds that still have
    entries) until they are empty, when they are given back for any process to claim.

    New entries go to the own file, keyed by the host's :class:`AcceptanceOrder`;
    entries come back from every held file merged by that key, so a session's turns
    come back in the order they were accepted, whichever process took them. An entry
    never moves between files: whoever holds a file's lock is its only replayer, so
    adopting is only taking the lock, and a crash at any point leaves every entry
    in its file for the next holder.

    Before a session's entry is replayed, or a new batch of it written straight
    through, the files held elsewhere are asked for an earlier entry of that session;
    only those with a :class:`PendingMarks` mark, usually none.

    Blocking; one thread at a time (the store's journal thread), but
    :meth:`elsewhere` may be called from any.
    """

    def __init__(self, base: Path) -> None:
        self._base = base
        self._held: dict[Path, tuple[Claim, Journal]] = {}
        self._held_names: frozenset[str] = frozenset()  # replaced, never changed: any thread
        self._closed = False
        self._neighbours = Neighbours()
        base.parent.mkdir(parents=True, exist_ok=True)
        self._marks = PendingMarks(base)
        self._order = AcceptanceOrder(base.with_suffix(".order"))
        claim = claim_free(base)
        try:
            self._own = Journal(claim.path)
        except BaseException:
            claim.release()
            self._order.close()
            raise
        self._hold(claim, self._own)
        try:
            self._order.at_least(self._own.last_accepted())
            self._mark(self._own)
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The own file."""
        return self._own.path

    def adopt(self) -> list[Path]:
        """Hold every slot file that nobody holds and that has entries (pending or
        parked); returns the files adopted. One that cannot be opened is logged and
        left alone."""
        adopted: list[Path] = []
        for name in self._marks.marked():
            if not self._base.with_name(name).exists():
                self._marks.clear(self._base.with_name(name))  # of a file deleted by hand
        for path in slot_paths(self._base):
            if path in self._held or (claim := try_claim(path)) is None:
                continue
            try:
                if not self._neighbours.has_entries(path):
                    self._marks.clear(path)  # a mark a crash left
                    claim.release()  # a free slot, empty: for a new process to claim
                    continue
                self._neighbours.forget(path)
                journal = Journal(path)
            except Exception:
                claim.release()
                log.exception("outbox file %s not adopted; its entries stay in it", path)
                continue
            self._hold(claim, journal)
            self._order.at_least(journal.last_accepted())
            self._mark(journal)
            adopted.append(path)
        return adopted

    def add_messages(
        self, session_id: str, messages: list[Message], session: Conversation | None
    ) -> int:
        """Queue a batch in the own file; returns how many entries are pending here."""
        self._marks.mark(self._own.path)
        self._own.add_messages(session_id, messages, session, self._order.next())
        return self.pending()

    def add_session(self, session: Conversation) -> int:
        """Queue the creation of a session in the own file; returns the pending count."""
        self._marks.mark(self._own.path)
        self._own.add_session(session, self._order.next())
        return self.pending()

    def first(self, excluding: Collection[str] = ()) -> Entry | None:
        """The earliest accepted pending entry of a session not in ``excluding``."""
        firsts = [e for _, j in self._held.values() if (e := j.first(excluding)) is not None]
        return min(firsts, key=_order, default=None)

    def entries(self) -> list[Entry]:
        """Every pending entry held, earliest accepted first."""
        return list(heapq.merge(*(j.entries() for _, j in self._held.values()), key=_order))

    def messages_of(self, session_id: str) -> list[Message]:
        """The pending messages of one session, in the order they were accepted."""
        each = (j.batches_of(session_id) for _, j in self._held.values())
        batches = heapq.merge(*each, key=lambda batch: batch[0])
        return [message for _, batch in batches for message in batch]

    def elsewhere(self) -> list[Path]:
        """The files not held here that have pending entries (their mark); any thread."""
        held = self._held_names
        return [self._base.with_name(name) for name in self._marks.marked() if name not in held]

    def earlier_elsewhere(self, entry: Entry) -> bool:
        """Whether a file not held here has a pending entry of ``entry``'s session
        accepted before it (then ``entry`` must wait)."""
        earliest = self._earliest_elsewhere(entry.session_id)
        return earliest is not None and earliest < entry.accepted

    def held_elsewhere(self, session_id: str) -> bool:
        """Whether a file not held here has a pending entry of the session."""
        return self._earliest_elsewhere(session_id) is not None

    def remove(self, entry: Entry) -> int:
        """Delete a replayed entry; returns how many are pending here."""
        journal = self._journal(entry)
        if not journal.remove(entry.seq):
            self._marks.clear(journal.path)
        return self.pending()

    def park(self, entry: Entry, reason: str) -> int:
        """Take an entry out of the queue, keeping it; returns how many are pending here."""
        journal = self._journal(entry)
        if not journal.park(entry.seq, reason):
            self._marks.clear(journal.path)
        return self.pending()

    def pending(self) -> int:
        return sum(journal.pending() for _, journal in self._held.values())

    def parked(self) -> int:
        return sum(journal.parked() for _, journal in self._held.values())

    def settle(self) -> int:
        """Give back the adopted files left empty; returns how many entries are pending."""
        for path, (claim, journal) in list(self._held.items()):
            self._mark(journal)
            if journal is not self._own and not journal.pending() and not journal.parked():
                del self._held[path]
                self._held_names = frozenset(p.name for p in self._held)
                journal.close()
                claim.release()
        return self.pending()

    def close(self) -> None:
        """Close every file held, then give its slot back (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for claim, journal in self._held.values():
            journal.close()
            claim.release()
        self._held.clear()
        self._held_names = frozenset()
        self._neighbours.close()
        self._order.close()

    def _hold(self, claim: Claim, journal: Journal) -> None:
        self._held[claim.path] = (claim, journal)
        self._held_names = frozenset(p.name for p in self._held)

    def _mark(self, journal: Journal) -> None:
        if journal.pending():
            self._marks.mark(journal.path)
        else:
            self._marks.clear(journal.path)

    def _earliest_elsewhere(self, session_id: str) -> int | None:
        return self._neighbours.earliest(session_id, self.elsewhere())

    def _journal(self, entry: Entry) -> Journal:
        if entry.file is None or entry.file not in self._held:
            raise ValueError(f"outbox entry {entry.seq} is not in a file held here")
        return self._held[entry.file][1]


def _order(entry: Entry) -> tuple[int, str, int]:
    return entry.accepted, str(entry.file), entry.seq
