"""Writing one outbox entry to the store it was meant for, safely more than once."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar

from adapters.outbox.journal import Entry, Kind
from rag_core.conversations import Conversation
from rag_core.errors import Conflict, DependencyUnavailable
from rag_core.ports import ConversationStore

T = TypeVar("T")


class Bounded(Protocol):
    """Awaits a call to the store with a deadline (DependencyUnavailable when it passes)."""

    async def __call__(self, call: Awaitable[T], /) -> T: ...


async def replay(
    entry: Entry,
    inner: ConversationStore,
    bounded: Bounded,
) -> None:
    """Write ``entry`` to ``inner``; idempotent, so an entry whose earlier replay
    landed but was not deleted (a crash, a lost reply) is written once only.

    Raises DependencyUnavailable in an outage (``bounded`` turns a timeout into it),
    anything else when the entry itself cannot be written: NotFound for a batch whose
    session is gone, Conflict when a session with the entry's id has another owner.
    """
    if entry.kind is Kind.MESSAGES:
        await bounded(inner.append(entry.session_id, list(entry.messages)))
        return
    if entry.session is None:
        raise ValueError(f"outbox entry {entry.seq} creates a session it does not describe")
    await _create(entry.session, inner, bounded)


async def _create(session: Conversation, inner: ConversationStore, bounded: Bounded) -> None:
    existing = await _get(session.id, inner, bounded)
    if existing is None:
        create = inner.create_session_with_id(session.id, session.user_id, session.title)
        try:
            await bounded(create)
        except DependencyUnavailable:
            raise
        except Exception:
            # An earlier attempt that timed out may have landed meanwhile (Conflict).
            existing = await _get(session.id, inner, bounded)
            if existing is None:
                raise
        else:
            return
    if existing.user_id != session.user_id:
        raise Conflict(f"session {session.id} exists with another owner")


async def _get(session_id: str, inner: ConversationStore, bounded: Bounded) -> Conversation | None:
    return await bounded(inner.get_session(session_id))
