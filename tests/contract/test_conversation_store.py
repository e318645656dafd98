"""The ConversationStore contract against the in-memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_store_contract import (
    ConversationStoreContract,
    FakeClock,
    SequentialIds,
    StoreFactory,
)
from sqlalchemy import Engine, text

from adapters.memory.conversations import InMemoryConversationStore
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema
from postgres import fresh_database


class TestInMemoryConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda clock, ids: InMemoryConversationStore(clock, ids)


class TestSqliteConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[StoreFactory]:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'db' / 'chat.sqlite3'}")
        prepare_schema(engine)

        def make(clock: FakeClock, ids: SequentialIds) -> SqlConversationStore:
            return SqlConversationStore(engine, clock=clock, ids=ids)

        yield make
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[Engine]:
    with fresh_database() as url:
        engine = create_engine_for(url)
        prepare_schema(engine)
        yield engine
        engine.dispose()


@pytest.mark.postgres
class TestPostgresConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, postgres_engine: Engine) -> StoreFactory:
        with postgres_engine.begin() as connection:
            connection.execute(text("TRUNCATE chat_messages, chat_sessions"))

        def make(clock: FakeClock, ids: SequentialIds) -> SqlConversationStore:
            return SqlConversationStore(postgres_engine, clock=clock, ids=ids)

        return make
