"""The ConversationStore contract against the in-memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from adapters.memory.conversations import InMemoryConversationStore
from adapters.sql.conversations import SqlConversationStore
from adapters.testing.contracts.conversation_store import ConversationStoreContract, StoreFactory
from rag_core.testing import FakeClock, SequentialIds


class TestInMemoryConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda clock, ids: InMemoryConversationStore(clock, ids)


class TestSqliteConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, sqlite_engine: Engine) -> StoreFactory:
        def make(clock: FakeClock, ids: SequentialIds) -> SqlConversationStore:
            return SqlConversationStore(sqlite_engine, clock=clock, ids=ids)

        return make


@pytest.mark.postgres
class TestPostgresConversationStore(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, postgres_engine: Engine) -> StoreFactory:
        with postgres_engine.begin() as connection:
            connection.execute(text("TRUNCATE chat_messages, chat_sessions"))

        def make(clock: FakeClock, ids: SequentialIds) -> SqlConversationStore:
            return SqlConversationStore(postgres_engine, clock=clock, ids=ids)

        return make
