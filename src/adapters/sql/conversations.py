"""The ConversationStore on SQL (PostgreSQL or SQLite) through SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, TypeVar

import attrs
from sqlalchemy import Connection, Engine, Row, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from adapters.sql.engine import DEFAULT_CALL_TIMEOUT, run_sql
from adapters.sql.schema import chat_messages, chat_sessions
from adapters.system import SystemClock, UuidGenerator
from rag_core.codec import (
    conversation_from_dict,
    conversation_to_dict,
    message_from_dict,
    message_to_dict,
)
from rag_core.conversations import Conversation, Message, check_appended
from rag_core.errors import Conflict, InvalidInput, NotFound
from rag_core.ports import Clock, IdGenerator

T = TypeVar("T")

_message_count = (
    select(func.count())
    .where(chat_messages.c.session_id == chat_sessions.c.id)
    .scalar_subquery()
    .label("message_count")
)
_session_columns = (*chat_sessions.c, _message_count)


class SqlConversationStore:
    """Sessions in ``chat_sessions``, messages in ``chat_messages`` (see
    :mod:`adapters.sql.schema`; run :func:`adapters.sql.engine.prepare_schema` first).

    Implements :class:`rag_core.ports.ConversationStore`: appending is idempotent by
    message id (a known id is skipped, and an append of only known ids does not touch
    the session); appending to, renaming or deleting an unknown session raises
    NotFound; ``list_sessions`` orders by ``updated_at`` descending, then id; rename
    touches ``updated_at``. A message whose ``session_id`` differs from the target
    session, a naive ``created_at``, or a negative limit/offset raises InvalidInput.
    Datetimes come back timezone-aware in UTC.

    Blocking work runs in a worker thread. Connection failures, timeouts and an
    exhausted pool raise ``DependencyUnavailable(dependency, <error class name>)``.
    Supports the ``postgresql`` and ``sqlite`` dialects (else ``ValueError``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        dependency: str = "database",
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported SQL dialect {engine.dialect.name!r}")
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._clock: Clock = clock or SystemClock()
        self._ids: IdGenerator = ids or UuidGenerator()
        self._dependency = dependency
        self._timeout = timeout

    async def create_session(self, user_id: str, title: str) -> Conversation:
        return await self.create_session_with_id(self._ids.new_id(), user_id, title)

    async def create_session_with_id(
        self, session_id: str, user_id: str, title: str
    ) -> Conversation:
        now = self._clock.now()
        session = Conversation(
            id=session_id, user_id=user_id, title=title, created_at=now, updated_at=now
        )
        row = {**conversation_to_dict(session), "created_at": now, "updated_at": now}
        del row["message_count"]  # counted, not stored

        def work(connection: Connection) -> None:
            connection.execute(chat_sessions.insert(), row)

        try:
            await self._run(work)
        except IntegrityError:  # the primary key decides
            raise Conflict(f"session {session_id!r} exists") from None
        return attrs.evolve(session, created_at=now.astimezone(UTC), updated_at=now.astimezone(UTC))

    async def get_session(self, session_id: str) -> Conversation | None:
        def work(connection: Connection) -> Conversation | None:
            return self._session_or_none(connection, session_id)

        return await self._run(work)

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        if limit < 0 or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        # Ties are broken by code point, as in memory, not by the database's locale.
        by_id = chat_sessions.c.id.collate("C") if self._postgres else chat_sessions.c.id
        query = (
            select(*_session_columns)
            .where(chat_sessions.c.user_id == user_id)
            .order_by(chat_sessions.c.updated_at.desc(), by_id)
            .limit(limit)
            .offset(offset)
        )

        def work(connection: Connection) -> list[Conversation]:
            return [_conversation(row) for row in connection.execute(query)]

        return await self._run(work)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        check_appended(session_id, messages)
        now = self._clock.now()

        def work(connection: Connection) -> None:
            ids = [m.id for m in messages]
            known = set(
                connection.scalars(select(chat_messages.c.id).where(chat_messages.c.id.in_(ids)))
            )
            fresh: dict[str, Message] = {}
            for message in messages:
                if message.id not in known:
                    fresh.setdefault(message.id, message)
            if not fresh:
                if self._session_or_none(connection, session_id) is None:
                    raise NotFound(f"no session {session_id!r}")
                return
            # Touching first locks the session row, so a concurrent delete waits.
            touched = connection.execute(
                update(chat_sessions).where(chat_sessions.c.id == session_id).values(updated_at=now)
            )
            if touched.rowcount == 0:
                raise NotFound(f"no session {session_id!r}")
            dialect = postgresql if self._postgres else sqlite
            insert = dialect.insert(chat_messages).on_conflict_do_nothing(index_elements=["id"])
            # One row per statement keeps the sequence in message order.
            for message in fresh.values():
                connection.execute(insert, _message_row(message))

        await self._run(work)

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        if limit is not None and limit < 0:
            raise InvalidInput("limit must not be negative")
        query = select(chat_messages).where(chat_messages.c.session_id == session_id)
        if limit is None:
            query = query.order_by(chat_messages.c.seq)
        else:
            query = query.order_by(chat_messages.c.seq.desc()).limit(limit)

        def work(connection: Connection) -> list[Message]:
            found = [_message(row) for row in connection.execute(query)]
            return found if limit is None else found[::-1]

        return await self._run(work)

    async def rename(self, session_id: str, title: str) -> Conversation:
        now = self._clock.now()

        def work(connection: Connection) -> Conversation:
            connection.execute(
                update(chat_sessions)
                .where(chat_sessions.c.id == session_id)
                .values(title=title, updated_at=now)
            )
            session = self._session_or_none(connection, session_id)
            if session is None:
                raise NotFound(f"no session {session_id!r}")
            return session

        return await self._run(work)

    async def delete_session(self, session_id: str) -> None:
        def work(connection: Connection) -> None:
            # Explicit, so the cascade holds even where foreign keys are not enforced.
            connection.execute(
                delete(chat_messages).where(chat_messages.c.session_id == session_id)
            )
            deleted = connection.execute(
                delete(chat_sessions).where(chat_sessions.c.id == session_id)
            )
            if deleted.rowcount == 0:
                raise NotFound(f"no session {session_id!r}")

        await self._run(work)

    async def delete_user_history(self, user_id: str) -> int:
        owned = select(chat_sessions.c.id).where(chat_sessions.c.user_id == user_id)

        def work(connection: Connection) -> int:
            connection.execute(delete(chat_messages).where(chat_messages.c.session_id.in_(owned)))
            deleted = connection.execute(
                delete(chat_sessions).where(chat_sessions.c.user_id == user_id)
            )
            return int(deleted.rowcount)

        return await self._run(work)

    async def probe(self) -> None:
        def work(connection: Connection) -> None:
            connection.execute(text("SELECT 1"))

        await self._run(work)

    @staticmethod
    def _session_or_none(connection: Connection, session_id: str) -> Conversation | None:
        query = select(*_session_columns).where(chat_sessions.c.id == session_id)
        row = connection.execute(query).first()
        return None if row is None else _conversation(row)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await run_sql(self._engine, self._dependency, work, seconds=self._timeout)


def _conversation(row: Row[Any]) -> Conversation:
    return conversation_from_dict(dict(row._mapping))


def _message_row(message: Message) -> dict[str, object]:
    # ``sources`` holds the citations' dict form (rag_core.codec) as JSON text.
    row = message_to_dict(message)
    row["sources"] = json.dumps(row["sources"], ensure_ascii=False)
    row["created_at"] = message.created_at
    return row


def _message(row: Row[Any]) -> Message:
    return message_from_dict({**row._mapping, "sources": json.loads(row.sources)})
