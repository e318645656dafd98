"""The AccountStore contract against the in-memory, SQLite and PostgreSQL stores,
and the SQL store's translation of an unreachable database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from adapters.memory.accounts import InMemoryAccountStore
from adapters.sql.accounts import SqlAccountStore
from adapters.sql.engine import create_engine_for
from adapters.testing.contracts.account_store import HASH, AccountStoreContract, user
from rag_core.errors import DependencyUnavailable


class TestInMemoryAccountStore(AccountStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryAccountStore:
        return InMemoryAccountStore()


class TestSqliteAccountStore(AccountStoreContract):
    @pytest.fixture
    def store(self, sqlite_engine: Engine) -> SqlAccountStore:
        return SqlAccountStore(sqlite_engine, dependency="sqlite")


@pytest.mark.postgres
class TestPostgresAccountStore(AccountStoreContract):
    @pytest.fixture
    def store(self, postgres_engine: Engine) -> SqlAccountStore:
        with postgres_engine.begin() as connection:
            connection.execute(text("TRUNCATE auth_profiles, auth_users, auth_revoked_tokens"))
        return SqlAccountStore(postgres_engine, dependency="postgres")


async def test_an_unreachable_database_is_a_dependency_error_without_secrets() -> None:
    # Port 1 on loopback refuses at once; the password must not leak into the error.
    engine = create_engine_for(
        "postgresql://reader:hunter2-secret@127.0.0.1:1/db", connect_timeout=1
    )
    store = SqlAccountStore(engine, dependency="postgres")
    try:
        with pytest.raises(DependencyUnavailable) as caught:
            await store.create_user(user(), HASH)
        assert caught.value.dependency == "postgres"
        assert "hunter2" not in str(caught.value)
        with pytest.raises(DependencyUnavailable):
            await store.is_revoked("token-1")
    finally:
        engine.dispose()


def test_other_dialects_are_refused() -> None:
    class FakeDialect:
        name = "mysql"

    class FakeEngine:
        dialect = FakeDialect()

    with pytest.raises(ValueError, match="mysql"):
        SqlAccountStore(FakeEngine())  # type: ignore[arg-type]
