"""The ContentCache contract against the in-memory, SQLite and PostgreSQL caches."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import Engine, text

from adapters.memory.content_cache import InMemoryContentCache
from adapters.sql.content_cache import SqlContentCache
from adapters.sql.engine import create_engine_for
from adapters.testing.contracts.content_cache import KEY, ContentCacheContract
from rag_core.errors import DependencyUnavailable


class TestInMemoryContentCache(ContentCacheContract):
    @pytest.fixture
    def cache(self) -> InMemoryContentCache:
        return InMemoryContentCache()


class TestSqliteContentCache(ContentCacheContract):
    @pytest.fixture
    def cache(self, sqlite_engine: Engine) -> SqlContentCache:
        return SqlContentCache(sqlite_engine)


@pytest.mark.postgres
class TestPostgresContentCache(ContentCacheContract):
    @pytest.fixture
    def cache(self, postgres_engine: Engine) -> SqlContentCache:
        with postgres_engine.begin() as connection:
            connection.execute(text("TRUNCATE content_cache"))
        return SqlContentCache(postgres_engine)


async def test_the_cache_outlives_its_adapter(sqlite_engine: Engine) -> None:
    await SqlContentCache(sqlite_engine).put(KEY, "kept")
    assert await SqlContentCache(sqlite_engine).get(KEY) == "kept"


async def test_an_unreachable_database_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    engine = create_engine_for(
        f"postgresql://postgres@127.0.0.1:{closed_port}/cache", connect_timeout=1
    )
    cache = SqlContentCache(engine, dependency="postgres")
    with pytest.raises(DependencyUnavailable) as caught:
        await cache.get(KEY)
    assert caught.value.dependency == "postgres"
    with pytest.raises(DependencyUnavailable):
        await cache.put(KEY, "value")
    with pytest.raises(DependencyUnavailable):
        await cache.probe()
    engine.dispose()
