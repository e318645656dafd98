"""What the outbox remembers of sessions it has seen, to keep chat going in an outage."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from rag_core.conversations import Conversation, Message


class Recall:
    """The last known state of recently seen sessions and their newest messages,
    and the sessions created in the outbox that the database does not have yet.

    Bounded, least recently used first out: ``max_sessions`` seen sessions, and the
    newest ``max_messages`` messages of ``max_histories`` of them (a few MB at most);
    sessions created in the outbox are pinned until :meth:`unpin`. A hint, not a source of truth: another process may
    have changed the database since. It is trusted for one thing that cannot go
    stale, a session's owner, and otherwise only while the database cannot be asked.
    """

    def __init__(
        self, *, max_sessions: int = 4096, max_histories: int = 256, max_messages: int = 10
    ) -> None:
        self._max_sessions = max_sessions
        self._max_histories = max_histories
        self._max_messages = max_messages
        self._sessions: OrderedDict[str, Conversation] = OrderedDict()
        self._messages: OrderedDict[str, list[Message]] = OrderedDict()
        self._pinned: dict[str, Conversation] = {}

    def session(self, session_id: str) -> Conversation | None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions.move_to_end(session_id)
        return session or self._pinned.get(session_id)

    def sessions_of(self, user_id: str) -> list[Conversation]:
        """The user's known sessions, most recently updated first (then by id)."""
        owned = {s.id: s for s in self._pinned.values() if s.user_id == user_id}
        owned.update((s.id, s) for s in self._sessions.values() if s.user_id == user_id)
        return sorted(sorted(owned.values(), key=_id), key=_updated, reverse=True)

    def pin(self, session: Conversation) -> None:
        self._pinned[session.id] = session
        self.saw_sessions([session])

    def unpin(self, session_id: str) -> None:
        self._pinned.pop(session_id, None)

    def messages(self, session_id: str) -> list[Message]:
        return list(self._messages.get(session_id, ()))

    def saw_sessions(self, sessions: Iterable[Conversation]) -> None:
        for session in sessions:
            self._sessions[session.id] = session
            self._sessions.move_to_end(session.id)
        while len(self._sessions) > self._max_sessions:
            evicted, _ = self._sessions.popitem(last=False)
            self._messages.pop(evicted, None)

    def saw_messages(self, session_id: str, newest: Sequence[Message]) -> None:
        """``newest`` are the session's newest messages, as read from the database."""
        if session_id in self._sessions:
            self._keep(session_id, list(newest))

    def appended(self, session_id: str, messages: Sequence[Message], now: datetime) -> None:
        """Messages were appended (or queued): extend the tail and touch the session."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        self._sessions[session_id] = attrs.evolve(session, updated_at=now)
        if session_id in self._messages:
            tail = {m.id: m for m in self._messages[session_id]}
            for message in messages:
                tail.setdefault(message.id, message)
            self._keep(session_id, list(tail.values()))

    def renamed(self, session: Conversation) -> None:
        if session.id in self._sessions:
            self._sessions[session.id] = session

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._pinned.pop(session_id, None)
        self._messages.pop(session_id, None)

    def forget_user(self, user_id: str) -> None:
        for session in self.sessions_of(user_id):
            self.forget(session.id)

    def _keep(self, session_id: str, messages: list[Message]) -> None:
        self._messages[session_id] = messages[-self._max_messages :]
        self._messages.move_to_end(session_id)
        while len(self._messages) > self._max_histories:
            self._messages.popitem(last=False)


def _id(session: Conversation) -> str:
    return session.id


def _updated(session: Conversation) -> datetime:
    return session.updated_at
