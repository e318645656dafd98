"""The QuestionLog contract against the in-memory, SQLite and PostgreSQL logs."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from adapters.memory.question_log import InMemoryQuestionLog
from adapters.sql.question_log import SqlQuestionLog
from adapters.testing.contracts.question_log import QuestionLogContract


class TestInMemoryQuestionLog(QuestionLogContract):
    @pytest.fixture
    def log(self) -> InMemoryQuestionLog:
        return InMemoryQuestionLog()


class TestSqliteQuestionLog(QuestionLogContract):
    @pytest.fixture
    def log(self, sqlite_engine: Engine) -> SqlQuestionLog:
        return SqlQuestionLog(sqlite_engine)


@pytest.mark.postgres
class TestPostgresQuestionLog(QuestionLogContract):
    @pytest.fixture
    def log(self, postgres_engine: Engine) -> SqlQuestionLog:
        with postgres_engine.begin() as connection:
            connection.execute(text("TRUNCATE answer_votes, logged_answers"))
        return SqlQuestionLog(postgres_engine)
