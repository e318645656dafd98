"""Writing one outbox entry to the store it was meant for, safely more than once."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar

from adapters.outbox.ids import PresetIds
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
    ids: PresetIds | None,
    bounded: Bounded,
) -> None:
    """Write ``entry`` to ``inner``; idempotent, so an entry whose earlier replay
    landed but was not deleted (a crash, a lost reply) is written once only.

    Raises DependencyUnavailable in an outage (``bounded`` turns a timeout into it),
    anything else when the entry itself cannot be written: NotFound for a batch whose
    session is gone, Conflict when a session with the entry's id has another owner,
    RuntimeError when ``inner`` does not take its session ids from ``ids``.
    """
    if entry.kind is Kind.MESSAGES:
        await bounded(inner.append(entry.session_id, list(entry.messages)))
        return
    if entry.session is None:
        raise ValueError(f"outbox entry {entry.seq} creates a session it does not describe")
    await _create(entry.session, inner, ids, bounded)


async def _create(
    session: Conversation,
    inner: ConversationStore,
    ids: PresetIds | None,
    bounded: Bounded,
) -> None:
    existing = await _get(session.id, inner, bounded)
    if existing is None:
        if ids is None:
            raise RuntimeError("a session created in the outbox needs session_ids to be replayed")
        try:
            with ids.preset(session.id):
                created = await bounded(inner.create_session(session.user_id, session.title))
        except DependencyUnavailable:
            raise
        except Exception:
            # An earlier attempt that timed out may have landed meanwhile (duplicate key).
            existing = await _get(session.id, inner, bounded)
            if existing is None:
                raise
        else:
            if created.id != session.id:
                raise RuntimeError("the inner store does not take its session ids from session_ids")
            return
    if existing.user_id != session.user_id:
        raise Conflict(f"session {session.id} exists with another owner")


async def _get(session_id: str, inner: ConversationStore, bounded: Bounded) -> Conversation | None:
    return await bounded(inner.get_session(session_id))
