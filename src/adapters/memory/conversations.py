"""An in-memory ConversationStore: the same contract as the SQL adapter, for tests
and for projects that embed the core. Lost when the process ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import attrs

from adapters.system import SystemClock, UuidGenerator
from rag_core.conversations import Conversation, Message, check_appended
from rag_core.errors import Conflict, InvalidInput, NotFound
from rag_core.ports import Clock, IdGenerator


class InMemoryConversationStore:
    """Implements :class:`rag_core.ports.ConversationStore` exactly as
    :class:`adapters.sql.conversations.SqlConversationStore` does.

    Appending is idempotent by message id (a known id, in any session, is skipped,
    and an append of only known ids does not touch the session); appending to,
    renaming or deleting an unknown session raises NotFound; ``list_sessions``
    orders by ``updated_at`` descending, then id; rename touches ``updated_at``.
    A message whose ``session_id`` differs from the target session, a naive
    ``created_at``, or a negative limit/offset raises InvalidInput. Datetimes
    come back timezone-aware in UTC. Never raises DependencyUnavailable.
    """

    def __init__(self, clock: Clock | None = None, ids: IdGenerator | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._ids: IdGenerator = ids or UuidGenerator()
        self._sessions: dict[str, Conversation] = {}  # message_count kept at 0 here
        self._messages: dict[str, list[Message]] = {}
        self._message_ids: set[str] = set()

    async def create_session(self, user_id: str, title: str) -> Conversation:
        return await self.create_session_with_id(self._ids.new_id(), user_id, title)

    async def create_session_with_id(
        self, session_id: str, user_id: str, title: str
    ) -> Conversation:
        if session_id in self._sessions:
            raise Conflict(f"session {session_id!r} exists")
        now = self._clock.now().astimezone(UTC)
        session = Conversation(
            id=session_id, user_id=user_id, title=title, created_at=now, updated_at=now
        )
        self._sessions[session.id] = session
        self._messages[session.id] = []
        return session

    async def get_session(self, session_id: str) -> Conversation | None:
        return self._counted(session_id) if session_id in self._sessions else None

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        if limit < 0 or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        owned = [s for s in self._sessions.values() if s.user_id == user_id]
        owned.sort(key=lambda s: s.id)
        owned.sort(key=lambda s: s.updated_at, reverse=True)  # stable: ties keep id order
        return [self._counted(s.id) for s in owned[offset : offset + limit]]

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        check_appended(session_id, messages)
        now = self._clock.now().astimezone(UTC)
        self._require(session_id)
        fresh: dict[str, Message] = {}
        for message in messages:
            if message.id not in self._message_ids:
                fresh.setdefault(message.id, message)
        if not fresh:
            return
        stored = self._messages[session_id]
        for message in fresh.values():
            stored.append(attrs.evolve(message, created_at=message.created_at.astimezone(UTC)))
        self._message_ids.update(fresh)
        self._sessions[session_id] = attrs.evolve(self._sessions[session_id], updated_at=now)

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        if limit is not None and limit < 0:
            raise InvalidInput("limit must not be negative")
        stored = self._messages.get(session_id, [])
        if limit is None:
            return list(stored)
        return stored[max(0, len(stored) - limit) :] if limit else []

    async def rename(self, session_id: str, title: str) -> Conversation:
        now = self._clock.now().astimezone(UTC)
        session = self._require(session_id)
        self._sessions[session_id] = attrs.evolve(session, title=title, updated_at=now)
        return self._counted(session_id)

    async def delete_session(self, session_id: str) -> None:
        self._require(session_id)
        self._drop(session_id)

    async def delete_user_history(self, user_id: str) -> int:
        owned = [s.id for s in self._sessions.values() if s.user_id == user_id]
        for session_id in owned:
            self._drop(session_id)
        return len(owned)

    async def probe(self) -> None:
        return None

    def _require(self, session_id: str) -> Conversation:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session

    def _counted(self, session_id: str) -> Conversation:
        return attrs.evolve(
            self._sessions[session_id], message_count=len(self._messages[session_id])
        )

    def _drop(self, session_id: str) -> None:
        del self._sessions[session_id]
        self._message_ids.difference_update(m.id for m in self._messages.pop(session_id))
