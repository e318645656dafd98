"""A dict-backed ConversationStore: sessions as plain records, every message in one
journal in append order, as a document database would hold them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

import attrs

from rag_core.conversations import Conversation, Message
from rag_core.errors import Conflict, InvalidInput, NotFound
from rag_core.ports import Clock, IdGenerator


class DictConversationStore:
    """Implements :class:`rag_core.ports.ConversationStore`."""

    def __init__(self, clock: Clock, ids: IdGenerator) -> None:
        self._clock = clock
        self._ids = ids
        self._sessions: dict[str, dict[str, Any]] = {}
        self._journal: dict[str, Message] = {}  # message id -> message, in append order

    async def create_session(self, user_id: str, title: str) -> Conversation:
        return await self.create_session_with_id(self._ids.new_id(), user_id, title)

    async def create_session_with_id(
        self, session_id: str, user_id: str, title: str
    ) -> Conversation:
        if session_id in self._sessions:
            raise Conflict(f"session {session_id} exists")
        now = self._clock.now().astimezone(UTC)
        record: dict[str, Any] = {"id": session_id, "user_id": user_id, "title": title}
        record.update(created_at=now, updated_at=now)
        self._sessions[record["id"]] = record
        return self._conversation(record)

    async def get_session(self, session_id: str) -> Conversation | None:
        record = self._sessions.get(session_id)
        return None if record is None else self._conversation(record)

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        if limit < 0 or offset < 0:
            raise InvalidInput("negative paging")
        owned = [r for r in self._sessions.values() if r["user_id"] == user_id]
        owned.sort(key=lambda r: (-r["updated_at"].timestamp(), r["id"]))
        return [self._conversation(r) for r in owned[offset : offset + limit]]

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        if any(m.session_id != session_id for m in messages):
            raise InvalidInput("a message of another session")
        if any(m.created_at.utcoffset() is None for m in messages):
            raise InvalidInput("a naive created_at")
        record = self._record(session_id)
        fresh = [m for m in messages if m.id not in self._journal]
        for message in fresh:
            if message.id not in self._journal:
                utc = message.created_at.astimezone(UTC)
                self._journal[message.id] = attrs.evolve(message, created_at=utc)
        if fresh:
            record["updated_at"] = self._clock.now().astimezone(UTC)

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        if limit is not None and limit < 0:
            raise InvalidInput("negative limit")
        stored = [m for m in self._journal.values() if m.session_id == session_id]
        return stored if limit is None else stored[len(stored) - limit :] if limit else []

    async def rename(self, session_id: str, title: str) -> Conversation:
        record = self._record(session_id)
        record.update(title=title, updated_at=self._clock.now().astimezone(UTC))
        return self._conversation(record)

    async def delete_session(self, session_id: str) -> None:
        self._record(session_id)
        del self._sessions[session_id]
        self._journal = {k: m for k, m in self._journal.items() if m.session_id != session_id}

    async def delete_user_history(self, user_id: str) -> int:
        owned = [r["id"] for r in self._sessions.values() if r["user_id"] == user_id]
        for session_id in owned:
            await self.delete_session(session_id)
        return len(owned)

    async def probe(self) -> None:
        return None

    def _record(self, session_id: str) -> dict[str, Any]:
        if session_id not in self._sessions:
            raise NotFound(f"no session {session_id!r}")
        return self._sessions[session_id]

    def _conversation(self, record: dict[str, Any]) -> Conversation:
        count = sum(1 for m in self._journal.values() if m.session_id == record["id"])
        return Conversation(**record, message_count=count)
