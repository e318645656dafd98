"""The outbox store's face for the chat use case: it keeps answering signed-in users
while the database is down, from what the outbox knows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.proxy import CONVERSATION_STORE, PortProxy
from rag_core.conversations import Conversation, Message
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.ports import ConversationStore

if TYPE_CHECKING:
    from adapters.outbox.store import OutboxConversationStore


class ChatFallbacks(PortProxy["OutboxConversationStore"]):
    """The reads (and the creation) that fall back on what the outbox knows; every
    other ConversationStore method is the store's own (generated: see
    :func:`chat_view`)."""

    async def create_session(self, user_id: str, title: str) -> Conversation:
        try:
            return await self._inner.create_session(user_id, title)
        except DependencyUnavailable as exc:
            return await self._inner.create_locally(user_id, title, exc)

    async def get_session(self, session_id: str) -> Conversation | None:
        try:
            return await self._inner.get_session(session_id)
        except DependencyUnavailable:
            known = self._inner.recall.session(session_id)
            if known is None:
                raise
            return known

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        if limit < 0 or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        try:
            return await self._inner.list_sessions(user_id, limit, offset)
        except DependencyUnavailable:
            return self._inner.recall.sessions_of(user_id)[offset : offset + limit]

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        if limit is not None and limit < 0:
            raise InvalidInput("limit must not be negative")
        try:
            return await self._inner.messages(session_id, limit)
        except DependencyUnavailable:
            known = await self._inner.known_messages(session_id)
            if limit is None:
                return known
            return known[-limit:] if limit else []


class ChatView(ChatFallbacks, port=CONVERSATION_STORE):
    """A :class:`~rag_core.ports.ConversationStore` for ChatService, over an
    :class:`~adapters.outbox.store.OutboxConversationStore`.

    While the database answers, it is that store exactly (same contract). When a
    read raises DependencyUnavailable, it answers from what the outbox knows instead
    of failing the chat:

    - ``get_session``: the session as last seen by this process (any read or
      create), as recorded with its queued turns (so it survives a restart), or as
      created in the outbox; an unknown one still raises (503: its owner cannot be
      checked). A session's owner never changes, so ChatService's ownership check
      (403) holds on the remembered owner. A session deleted meanwhile by another
      process gets its queued turns parked at replay, not lost.
    - ``list_sessions``: the user's known sessions (possibly fewer than the
      database has: the user's turn may then go to a new session).
    - ``messages``: the newest messages seen, then the queued ones: the answer gets
      what history there is, possibly none.
    - ``create_session``: created in the outbox with its final id and written to
      the database before any turn queued for it (needs the store's ``session_ids``).

    Every other method is the store's (``append`` queues in an outage). Give this view
    to ChatService only: the history routes need the store itself, which answers 503
    rather than a partial history.
    """


def chat_view(store: OutboxConversationStore) -> ConversationStore:
    """The chat face of ``store`` (see :data:`ChatView`)."""
    return CONVERSATION_STORE.wrap(ChatView, store)
