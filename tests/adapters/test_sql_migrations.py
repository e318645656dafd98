"""Issue 14, schema migrations: the SQL schema is under Alembic's versioned migrations,
applied at start-up under the schema lock, on PostgreSQL and SQLite.

A database made by ``create_all`` before migrations (tests/fixtures/legacy_schema, the
DDL it emitted, frozen) is stamped as the baseline without changes and upgraded with
its data intact; two instances starting at once migrate once; a fresh database gets
the head; and the migrations' schema equals the models' metadata, so a model change
without a migration fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Text,
    bindparam,
    inspect,
    text,
)

from adapters.sql.accounts import SqlAccountStore
from adapters.sql.content_cache import SqlContentCache
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, lock_schema, prepare_schema
from adapters.sql.migrate import (
    BASELINE,
    BASELINE_TABLES,
    MIGRATIONS,
    VERSION_TABLE,
    SchemaChange,
    current,
    differences,
    head,
    next_revision_id,
    script_directory,
    upgrade,
)
from adapters.sql.schema import UtcDateTime, metadata
from postgres import fresh_database
from service_process import clean_env, cli

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_schema"
CHAT_TABLES = ("chat_sessions", "chat_messages")
# A stored answer's sources as releases before migrations wrote them.
CITATIONS = (
    '[{"number": 1, "title": "Nodes", "route": "/docs/nodes", "heading_path": ["Nodes"], '
    '"snippet": "A node is a process.", "score": 0.5, "chunk_id": "c1", "document_id": "d1"}]'
)
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'app.sqlite3'}"
    else:
        with fresh_database() as postgres_url:
            yield postgres_url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@contextmanager
def another_database(url: str) -> Iterator[str]:
    """A second empty database of ``url``'s kind."""
    if url.startswith("sqlite"):
        yield url.replace("app.sqlite3", "other.sqlite3")
    else:
        with fresh_database() as other:
            yield other


def all_revisions() -> tuple[str, ...]:
    """Every shipped revision, oldest first."""
    return tuple(reversed([script.revision for script in script_directory().walk_revisions()]))


def legacy_statements(dialect: str, tables: tuple[str, ...] | None = None) -> list[str]:
    """The frozen create_all DDL (tables and their indexes), optionally of some tables only."""
    lines = [
        line
        for line in (LEGACY / f"{dialect}.sql").read_text().splitlines()
        if not line.startswith("--")
    ]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    if tables is None:
        return statements
    return [s for s in statements if any(f" {t} " in f"{s} " for t in tables)]


def create_legacy(engine: Engine, tables: tuple[str, ...] | None = None) -> None:
    with engine.begin() as connection:
        for statement in legacy_statements(engine.dialect.name, tables):
            connection.exec_driver_sql(statement)


def schema_of(engine: Engine, *, skip: frozenset[str] = frozenset({VERSION_TABLE})) -> Any:
    """Everything reflection tells about the tables (but ``skip``): columns with types,
    nullability, defaults; key, foreign key, unique and index names and columns;
    on SQLite also the stored CREATE statements, verbatim."""
    found: dict[str, Any] = {}
    inspector = inspect(engine)
    for table in sorted(set(inspector.get_table_names()) - skip):
        columns = [
            (c["name"], str(c["type"]), c["nullable"], c.get("default"))
            for c in inspector.get_columns(table)
        ]
        foreign = sorted(
            (
                fk["name"],
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                tuple(fk["referred_columns"]),
                tuple(sorted(fk.get("options", {}).items())),
            )
            for fk in inspector.get_foreign_keys(table)
        )
        found[table] = {
            "columns": columns,
            "pk": inspector.get_pk_constraint(table),
            "fk": foreign,
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(str(c) for c in i["column_names"]), i["unique"])
                for i in inspector.get_indexes(table)
            ),
        }
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            found["sqlite_master"] = sorted(
                (name, sql)
                for name, sql in connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
                )
                if name not in skip
            )
    return found


def insert_rows(connection: Connection, tables: tuple[str, ...] = tuple(BASELINE_TABLES)) -> None:
    """A row (or two) in each of ``tables``, in plain SQL as any release wrote them."""
    at = {"at": NOW, "later": NOW + timedelta(hours=1)}
    rows = {
        "chat_sessions": (
            "INSERT INTO chat_sessions (id, user_id, title, created_at, updated_at, is_active) "
            "VALUES ('s1', 'u1', 'Nodes', :at, :later, :yes)"
        ),
        "chat_messages": (
            "INSERT INTO chat_messages (id, session_id, role, content, selected_text, sources, "
            "created_at) VALUES ('m1', 's1', 'user', 'What is a node?', '', '[]', :at), "
            "('m2', 's1', 'assistant', 'A process [1].', '', :sources, :later)"
        ),
        "auth_users": (
            "INSERT INTO auth_users (id, email, name, password_hash, proficiency, "
            "email_verified, created_at, updated_at) VALUES ('u1', 'ada@example.org', 'Ada', "
            "'$2b$12$abcdefghijklmnopqrstuv', 'beginner', :no, :at, :at)"
        ),
        "auth_profiles": (
            "INSERT INTO auth_profiles (user_id, technical_background, hardware_access, "
            "learning_goals, preferred_language, updated_at) "
            "VALUES ('u1', 'Python', 'a Jetson', 'ROS 2', 'ur', :at)"
        ),
        "auth_revoked_tokens": (
            "INSERT INTO auth_revoked_tokens (token_id, expires_at) VALUES ('jti-1', :later)"
        ),
        "content_cache": (
            "INSERT INTO content_cache (key, value, created_at) VALUES ('" + "a" * 64 + "', "
            "'translated', :at)"
        ),
    }
    order = ["chat_sessions", "chat_messages", "auth_users", "auth_profiles"]
    order += ["auth_revoked_tokens", "content_cache"]
    types: dict[str, Any] = {
        "at": UtcDateTime(),
        "later": UtcDateTime(),
        "yes": Boolean(),
        "no": Boolean(),
        "sources": Text(),
    }
    values = {**at, "yes": True, "no": False, "sources": CITATIONS}
    for table in order:
        if table in tables:
            sql = rows[table]
            used = [name for name in types if f":{name}" in sql]
            statement = text(sql).bindparams(*(bindparam(n, type_=types[n]) for n in used))
            connection.execute(statement, {n: values[n] for n in used})


def rows_of(
    engine: Engine, tables: tuple[str, ...] = tuple(BASELINE_TABLES), *, like: Any = None
) -> Any:
    """Every row of ``tables`` as text, by column; with ``like`` (an earlier result),
    only the columns it had: later migrations may add columns, never lose values."""
    found: dict[str, Any] = {}
    with engine.connect() as connection:
        for table in tables:
            columns = (
                like[table][0] if like else [c["name"] for c in inspect(engine).get_columns(table)]
            )
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = connection.execute(text(f"SELECT {quoted} FROM {table}"))
            found[table] = (columns, sorted(tuple(str(v) for v in row) for row in rows))
    return found


def test_the_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert all_revisions()[0] == BASELINE
    assert head() == all_revisions()[-1]
    assert next_revision_id() == f"{int(head()) + 1:04d}"


def test_the_baseline_is_exactly_the_schema_create_all_made(engine: Engine, url: str) -> None:
    with engine.begin() as connection:
        lock_schema(connection)
        change = upgrade(connection, BASELINE)
    assert change == SchemaChange(before=None, after=BASELINE, applied=(BASELINE,))
    with another_database(url) as other:
        legacy = create_engine_for(other)
        create_legacy(legacy)
        expected = schema_of(legacy)
        legacy.dispose()
    assert set(expected) >= BASELINE_TABLES
    assert schema_of(engine) == expected


def test_a_create_all_database_is_stamped_without_changes_then_upgraded_losing_nothing(
    engine: Engine,
) -> None:
    create_legacy(engine)
    with engine.begin() as connection:
        insert_rows(connection)
    schema, rows = schema_of(engine), rows_of(engine)
    assert len(rows["chat_messages"][1]) == 2

    # Stamping is all that happens to a create_all schema at the baseline.
    with engine.begin() as connection:
        lock_schema(connection)
        stamped = upgrade(connection, BASELINE)
    assert stamped == SchemaChange(before=None, after=BASELINE, stamped=True)
    assert schema_of(engine) == schema
    assert rows_of(engine) == rows

    # Then start-up upgrades it to the head, and every row is still there.
    change = prepare_schema(engine)
    assert (change.before, change.after) == (BASELINE, head())
    assert change.applied == all_revisions()[1:]
    assert rows_of(engine, like=rows) == rows


async def test_the_stores_read_what_a_create_all_database_held(engine: Engine) -> None:
    create_legacy(engine)
    with engine.begin() as connection:
        insert_rows(connection)
    change = prepare_schema(engine)
    assert change.stamped
    assert change.after == head()

    conversations = SqlConversationStore(engine)
    [session] = await conversations.list_sessions("u1", limit=10, offset=0)
    assert (session.id, session.title, session.updated_at) == (
        "s1",
        "Nodes",
        NOW + timedelta(hours=1),
    )
    messages = await conversations.messages("s1")
    assert [(m.id, m.content) for m in messages] == [
        ("m1", "What is a node?"),
        ("m2", "A process [1]."),
    ]
    assert [c.route for c in messages[1].sources] == ["/docs/nodes"]
    accounts = SqlAccountStore(engine)
    credentials = await accounts.find_credentials("ada@example.org")
    assert credentials is not None
    assert credentials.user.id == "u1"
    profile = await accounts.get_profile("u1")
    assert profile is not None
    assert profile.hardware_access == "a Jetson"
    assert await accounts.is_revoked("jti-1")
    assert await SqlContentCache(engine).get("a" * 64) == "translated"
    # ... and write as before.
    await conversations.create_session("u1", "after the upgrade")
    assert len(await conversations.list_sessions("u1", limit=10, offset=0)) == 2


def test_a_database_of_a_release_before_accounts_gets_the_rest(engine: Engine) -> None:
    create_legacy(engine, CHAT_TABLES)
    with engine.begin() as connection:
        insert_rows(connection, CHAT_TABLES)
    rows = rows_of(engine, CHAT_TABLES)
    change = prepare_schema(engine)
    assert not change.stamped
    assert (change.before, change.after, change.applied) == (None, head(), all_revisions())
    assert set(inspect(engine).get_table_names()) >= BASELINE_TABLES | {VERSION_TABLE}
    assert rows_of(engine, CHAT_TABLES, like=rows) == rows
    with engine.connect() as connection:
        assert differences(connection, metadata) == []


def test_a_fresh_database_gets_the_head(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    change = prepare_schema(engine)
    assert change == SchemaChange(before=None, after=head(), applied=all_revisions())
    with engine.connect() as connection:
        assert current(connection) == head()
    assert set(inspect(engine).get_table_names()) == {
        VERSION_TABLE,
        *(table.name for table in metadata.sorted_tables),
    }
    again = prepare_schema(engine)
    assert again == SchemaChange(before=head(), after=head())
    assert not again.changed


def test_the_migrations_build_the_models_schema(engine: Engine) -> None:
    """autogenerate finds nothing between the migrated database and the models: a
    change to adapters/sql/schema.py without a migration fails here."""
    prepare_schema(engine)
    with engine.connect() as connection:
        assert differences(connection, metadata) == []


def test_a_model_change_without_a_migration_is_found(engine: Engine) -> None:
    # Guards the test above against passing vacuously.
    prepare_schema(engine)
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["chat_sessions"].append_column(Column("unmigrated", String(8), nullable=True))
    with engine.connect() as connection:
        found = differences(connection, changed)
    assert [(op[0], op[3].name) for op in found] == [("add_column", "unmigrated")]


# One service instance starting: it migrates the database at argv[1] and prints what it did.
INSTANCE = """
import json, sys
import attrs
from adapters.sql.engine import create_engine_for, prepare_schema
engine = create_engine_for(sys.argv[1])
print("ready", flush=True)
print(json.dumps(attrs.asdict(prepare_schema(engine))), flush=True)
"""


@pytest.mark.parametrize("legacy", [False, True], ids=["fresh", "create_all"])
def test_two_instances_starting_at_once_migrate_once(
    url: str, legacy: bool, tmp_path: Path
) -> None:
    holder = create_engine_for(url)
    if legacy:
        create_legacy(holder)
        with holder.begin() as connection:
            insert_rows(connection)
    rows = rows_of(holder) if legacy else None
    # Two processes reach the schema lock while it is held, so they truly start together.
    with holder.begin() as connection:
        lock_schema(connection)
        instances = [
            subprocess.Popen(
                [sys.executable, "-c", INSTANCE, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
            for _ in range(2)
        ]
        for instance in instances:
            assert instance.stdout is not None
            assert instance.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        assert [instance.poll() for instance in instances] == [None, None]
    outputs = [instance.communicate(timeout=60) for instance in instances]
    try:
        assert [instance.returncode for instance in instances] == [0, 0], outputs
        reports = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
        changes = [SchemaChange(**{**r, "applied": tuple(r["applied"])}) for r in reports]
        first, second = sorted(changes, key=lambda change: not change.changed)
        if legacy:
            assert first == SchemaChange(
                before=None, after=head(), applied=all_revisions()[1:], stamped=True
            )
        else:
            assert first == SchemaChange(before=None, after=head(), applied=all_revisions())
        assert second == SchemaChange(before=head(), after=head())
        with holder.connect() as connection:
            assert current(connection) == head()
            versions = connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar()
            assert versions == 1
        if legacy:
            assert rows_of(holder, like=rows) == rows
    finally:
        holder.dispose()


def test_a_revision_newer_than_this_release_is_left_alone(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    prepare_schema(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    change = prepare_schema(engine)
    assert change == SchemaChange(before="9999", after="9999", unknown=True)
    assert "9999" in caplog.text and "does not know" in caplog.text
    with engine.connect() as connection:
        assert current(connection) == "9999"


def test_the_db_commands(tmp_path: Path) -> None:
    """``rag-backend db current`` and ``db upgrade`` on the local SQLite database, made
    by create_all before migrations."""
    env = clean_env(DATA_DIR=str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    legacy = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'rag.db'}")
    create_legacy(legacy)
    legacy.dispose()

    before = cli("db", "current", env=env, cwd=tmp_path)
    assert before.returncode == 1, before.stderr
    assert "made before migrations" in before.stdout
    upgraded = cli("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"stamped as {BASELINE}" in upgraded.stdout
    after = cli("db", "current", env=env, cwd=tmp_path)
    assert (after.returncode, after.stdout.split(": ", 1)[1].strip()) == (0, f"{head()} (head)")


def test_a_written_migration_spells_our_timestamp_type_in_plain_sqlalchemy() -> None:
    from adapters.sql.migrate import render_item
    from adapters.sql.schema import UtcDateTime

    assert render_item("type", UtcDateTime(), None) == "sa.DateTime(timezone=True)"
    assert render_item("type", Text(), None) is False  # alembic's own rendering
