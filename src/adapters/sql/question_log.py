"""The QuestionLog on SQL (PostgreSQL or SQLite) through SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sql.engine import DEFAULT_CALL_TIMEOUT, run_sql
from adapters.sql.schema import answer_votes, logged_answers
from rag_core.insights import LoggedAnswer, Rating, Vote

T = TypeVar("T")


class SqlQuestionLog:
    """Logged answers in ``logged_answers`` and votes in ``answer_votes`` (see
    :mod:`adapters.sql.schema`; the schema is migrated at start-up).

    Implements :class:`rag_core.insights.QuestionLog`: ``record`` inserts or, for a
    known id, does nothing; ``vote`` inserts or replaces the reader's vote in one
    statement (``ON CONFLICT DO UPDATE``), so concurrent votes of one reader leave one.
    Pages and missing terms are JSON lists. Blocking work runs in a worker thread;
    connection failures and timeouts raise ``DependencyUnavailable(dependency, ...)``.
    """

    def __init__(
        self, engine: Engine, *, dependency: str = "database", timeout: float = DEFAULT_CALL_TIMEOUT
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported SQL dialect {engine.dialect.name!r}")
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._engine = engine
        self._record = dialect.insert(logged_answers).on_conflict_do_nothing(index_elements=["id"])
        upsert = dialect.insert(answer_votes)
        self._vote = upsert.on_conflict_do_update(
            index_elements=["answer_id", "reader"],
            set_={
                "rating": upsert.excluded.rating,
                "comment": upsert.excluded.comment,
                "voted_at": upsert.excluded.voted_at,
            },
        )
        self._dependency = dependency
        self._timeout = timeout

    async def record(self, entry: LoggedAnswer) -> None:
        row = {
            "id": entry.id,
            "asked_at": entry.asked_at,
            "question": entry.question,
            "mode": entry.mode,
            "uncertain": entry.uncertain,
            "pages": json.dumps(list(entry.pages), ensure_ascii=False),
            "missing_terms": json.dumps(list(entry.missing_terms), ensure_ascii=False),
            "user_id": entry.user_id,
        }

        def work(connection: Connection) -> None:
            connection.execute(self._record, row)

        await self._run(work)

    async def vote(self, vote: Vote) -> bool:
        known = select(logged_answers.c.id).where(logged_answers.c.id == vote.answer_id)
        row = {
            "answer_id": vote.answer_id,
            "reader": vote.reader,
            "rating": vote.rating.value,
            "comment": vote.comment,
            "voted_at": vote.at,
        }

        def work(connection: Connection) -> bool:
            if connection.execute(known).first() is None:
                return False
            connection.execute(self._vote, row)
            return True

        return await self._run(work)

    async def answers(self, since: datetime) -> list[LoggedAnswer]:
        query = (
            select(logged_answers)
            .where(logged_answers.c.asked_at >= since)
            .order_by(logged_answers.c.asked_at, logged_answers.c.id)
        )

        def work(connection: Connection) -> list[LoggedAnswer]:
            return [_answer(row) for row in connection.execute(query).mappings()]

        return await self._run(work)

    async def votes(self, since: datetime) -> list[Vote]:
        query = (
            select(answer_votes)
            .join(logged_answers, logged_answers.c.id == answer_votes.c.answer_id)
            .where(logged_answers.c.asked_at >= since)
        )

        def work(connection: Connection) -> list[Vote]:
            return [
                Vote(r["answer_id"], r["reader"], Rating(r["rating"]), r["comment"], r["voted_at"])
                for r in connection.execute(query).mappings()
            ]

        return await self._run(work)

    async def purge(self, before: datetime) -> int:
        old = select(logged_answers.c.id).where(logged_answers.c.asked_at < before)

        def work(connection: Connection) -> int:
            connection.execute(delete(answer_votes).where(answer_votes.c.answer_id.in_(old)))
            result = connection.execute(
                delete(logged_answers).where(logged_answers.c.asked_at < before)
            )
            return int(result.rowcount)

        return await self._run(work)

    async def probe(self) -> None:
        def work(connection: Connection) -> None:
            connection.execute(text("SELECT 1"))

        await self._run(work)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await run_sql(self._engine, self._dependency, work, seconds=self._timeout)


def _answer(row: Any) -> LoggedAnswer:
    return LoggedAnswer(
        id=row["id"],
        asked_at=row["asked_at"],
        question=row["question"],
        mode=row["mode"],
        uncertain=bool(row["uncertain"]),
        pages=tuple(json.loads(row["pages"])),
        missing_terms=tuple(json.loads(row["missing_terms"])),
        user_id=row["user_id"],
    )
