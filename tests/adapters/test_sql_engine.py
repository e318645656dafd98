"""Engine construction, URL handling, schema preparation and failure translation."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import (
    create_engine_for,
    dependency_errors,
    normalise_url,
    prepare_schema,
    redact,
    run_sql,
)
from adapters.sql.schema import metadata
from postgres import fresh_database
from rag_core.errors import DependencyUnavailable

SECRET = "s3cret-Pa55"
TABLES = {"chat_sessions", "chat_messages"}


class ConnectAttempted(Exception):
    pass


def connect_params(engine: Engine) -> dict[str, Any]:
    """What the engine would hand to psycopg2.connect, captured without connecting."""
    captured: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        captured.update(cparams)
        raise ConnectAttempted

    with pytest.raises(ConnectAttempted), engine.connect():
        pass
    engine.dispose()
    return captured


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_postgres_schemes_normalise_to_psycopg2(scheme: str) -> None:
    url = normalise_url(f"{scheme}://app:{SECRET}@ep-x.eu.aws.neon.tech/chat?sslmode=require")
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.database) == (
        "app",
        SECRET,
        "ep-x.eu.aws.neon.tech",
        "chat",
    )
    assert dict(url.query) == {"sslmode": "require"}


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{SECRET}@db/app",
        f"postgresql+asyncpg://u:{SECRET}@h/d",
        "not a url",
        "sqlite://",
        "sqlite:///:memory:",
    ],
)
def test_unsupported_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        create_engine_for(url)
    assert SECRET not in str(caught.value)


def test_postgres_connect_arguments() -> None:
    engine = create_engine_for(
        f"postgres://app:{SECRET}@db.example:6543/chat?sslmode=require&options=endpoint%3Dep-x",
        connect_timeout=2.5,
        statement_timeout_ms=1234,
        pool_size=3,
    )
    params = connect_params(engine)
    assert params["sslmode"] == "require"
    assert params["connect_timeout"] == 3
    assert params["options"] == "endpoint=ep-x -c statement_timeout=1234"
    assert (params["host"], params["port"], params["dbname"]) == ("db.example", 6543, "chat")
    assert engine.pool.size() == 3  # type: ignore[attr-defined]


def test_neon_pooler_gets_no_startup_options() -> None:
    pooled = create_engine_for(f"postgresql://app:{SECRET}@ep-x-pooler.eu.aws.neon.tech/chat")
    assert "options" not in connect_params(pooled)
    direct = create_engine_for(f"postgresql://app:{SECRET}@ep-x.eu.aws.neon.tech/chat")
    assert connect_params(direct)["options"] == "-c statement_timeout=15000"


def test_redact_hides_the_password() -> None:
    shown = redact(f"postgres://app:{SECRET}@ep-x.neon.tech/chat?sslmode=require")
    assert SECRET not in shown
    assert shown == "postgres://app:***@ep-x.neon.tech/chat?sslmode=require"
    assert SECRET not in redact(f"postgresql://app@h/d?password={SECRET}")
    assert redact("sqlite:///data/app.db") == "sqlite:///data/app.db"
    assert redact(f"::{SECRET}::") == "<unparseable database URL>"


def test_sqlite_file_engine(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'new' / 'folder' / 'app.db'}")
    try:
        prepare_schema(engine)
        prepare_schema(engine)
        assert (tmp_path / "new" / "folder" / "app.db").is_file()
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 15000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_prepare_schema_twice_and_the_statement_timeout() -> None:
    with fresh_database() as url:
        engine = create_engine_for(url, statement_timeout_ms=200)
        try:
            prepare_schema(engine)
            prepare_schema(engine)
            assert set(inspect(engine).get_table_names()) >= TABLES
            with (
                pytest.raises(DependencyUnavailable),
                dependency_errors("database"),
                engine.connect() as connection,
            ):
                connection.execute(text("SELECT pg_sleep(5)"))
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_prepare_schema_from_two_instances_at_once() -> None:
    with fresh_database() as url:
        engines = [create_engine_for(url), create_engine_for(url)]
        start = threading.Barrier(len(engines))
        failures: list[BaseException] = []

        def boot(engine: Engine) -> None:
            try:
                start.wait(timeout=10)
                prepare_schema(engine)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=boot, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for engine in engines:
            engine.dispose()
        assert failures == []
        check = create_engine_for(url)
        assert set(inspect(check).get_table_names()) >= TABLES
        check.dispose()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_unreachable_postgres_is_unavailable_quickly(closed_port: int) -> None:
    engine = create_engine_for(
        f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/chat", connect_timeout=1
    )
    store = SqlConversationStore(engine, dependency="postgres")
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as caught:
        await store.probe()
    with pytest.raises(DependencyUnavailable):
        await store.create_session("alice", "t")
    with pytest.raises(DependencyUnavailable):
        prepare_schema(engine)
    assert time.monotonic() - started < 3
    assert caught.value.dependency == "postgres"
    assert SECRET not in str(caught.value)
    assert str(closed_port) not in str(caught.value)
    engine.dispose()


async def test_silent_postgres_times_out(silent_port: int) -> None:
    engine = create_engine_for(
        f"postgresql://app:{SECRET}@127.0.0.1:{silent_port}/chat", connect_timeout=1
    )
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as caught:
        await SqlConversationStore(engine).probe()
    # Some libpq versions wait at least two seconds, whatever is asked.
    assert time.monotonic() - started < 4
    assert SECRET not in str(caught.value)
    engine.dispose()


def test_only_connectivity_errors_become_unavailable() -> None:
    with pytest.raises(DependencyUnavailable, match="TimeoutError"), dependency_errors("db"):
        raise PoolTimeout("QueuePool limit reached")
    invalidated = DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    with pytest.raises(DependencyUnavailable), dependency_errors("db"):
        raise invalidated
    with pytest.raises(IntegrityError), dependency_errors("db"):
        raise IntegrityError("INSERT", None, Exception("duplicate"))


async def test_the_first_call_prepares_a_schema_not_prepared_at_start_up(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        assert inspect(engine).get_table_names() == []
        tables = [table.name for table in metadata.sorted_tables]
        count = await run_sql(
            engine,
            "database",
            lambda c: c.execute(text(f"SELECT count(*) FROM {tables[0]}")).scalar(),
        )
        assert count == 0
        # The migrations' own version table comes with them.
        assert sorted(inspect(engine).get_table_names()) == sorted([*tables, "alembic_version"])
    finally:
        engine.dispose()
