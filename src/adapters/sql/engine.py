"""Connecting to the database: URL handling, engine construction, schema migration,
and the translation of connection failures into DependencyUnavailable.

PostgreSQL (psycopg2) in production, an SQLite file locally; nothing else is accepted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.sql.migrate import SchemaChange, upgrade
from rag_core.errors import DependencyUnavailable, InvalidInput

T = TypeVar("T")
log = logging.getLogger(__name__)

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg2"})
_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite"})
# Any constant will do, as long as every instance of the service uses the same one.
_SCHEMA_LOCK_KEY = 0x7261675F736368  # "rag_sch"
_REDACTED = "***"


def normalise_url(url: str) -> URL:
    """The URL with its driver made explicit (``postgresql+psycopg2``, ``sqlite``).

    Query parameters such as ``sslmode=require`` are kept. Raises ``ValueError``
    (whose message never contains the password) for an unparseable URL or another
    database than PostgreSQL or SQLite.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("the database URL cannot be parsed") from None
    if parsed.drivername in _POSTGRES_SCHEMES:
        return parsed.set(drivername="postgresql+psycopg2")
    if parsed.drivername in _SQLITE_SCHEMES:
        return parsed.set(drivername="sqlite")
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: "
        "use postgresql:// (or postgres://) or sqlite:///path"
    )


def redact(url: str | URL) -> str:
    """The URL with its password (in the authority or a ``password`` query
    parameter) masked, for log lines and error messages."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": _REDACTED})
    return parsed.render_as_string(hide_password=True)


def is_transaction_pooled(url: URL) -> bool:
    """Whether the URL points at Neon's PgBouncer pooler (``ep-...-pooler.`` host),
    which refuses ``statement_timeout`` as a startup option."""
    first_label = (url.host or "").split(".", 1)[0]
    return first_label.endswith("-pooler")


def create_engine_for(
    url: str,
    *,
    connect_timeout: float = 5,
    statement_timeout_ms: int = 15000,
    pool_size: int = 5,
    pooled: bool | None = None,
) -> Engine:
    """An engine for a PostgreSQL or SQLite URL. Does not connect.

    PostgreSQL: connections time out after ``connect_timeout`` seconds (rounded up
    to whole seconds for libpq), statements after ``statement_timeout_ms``
    (0: no limit), a pool of ``pool_size`` plus as many overflow connections, pinged
    before use and recycled after five minutes; waiting for a free connection also
    gives up after ``connect_timeout``. ``pooled`` (``None``: detected from the host
    name) says a transaction pooler sits in front: no startup options are sent then,
    so the statement timeout must be set on the role
    (``ALTER ROLE ... SET statement_timeout = '15s'``).

    SQLite: ``sqlite:///path`` creates the file's folder; WAL journal, foreign keys
    on, and a busy timeout of ``statement_timeout_ms``. In-memory SQLite is refused
    (use the in-memory adapters).

    Raises ``ValueError`` as :func:`normalise_url` does, for in-memory SQLite, and
    for a ``pool_size`` below 1.
    """
    parsed = normalise_url(url)
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    if parsed.drivername == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms=statement_timeout_ms, pool_size=pool_size)
    connect_args: dict[str, object] = {
        "connect_timeout": max(1, math.ceil(connect_timeout)),
        # A connection that goes silent (a partition, a Neon compute gone) is
        # noticed by TCP keepalives and tcp_user_timeout instead of hanging forever.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }
    if pooled is None:
        pooled = is_transaction_pooled(parsed)
    if statement_timeout_ms > 0 and not pooled:
        # Startup options in the URL (Neon's ``endpoint=...``) would be overridden by
        # connect_args, so they are merged into one string.
        existing = parsed.query.get("options", "")
        existing = existing if isinstance(existing, str) else " ".join(existing)
        option = f"-c statement_timeout={int(statement_timeout_ms)}"
        connect_args["options"] = f"{existing} {option}".strip()
        parsed = parsed.difference_update_query(["options"])
    return sa_create_engine(
        parsed,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_recycle=300,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
    )


def _sqlite_engine(url: URL, *, busy_timeout_ms: int, pool_size: int) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        # One in-memory connection shared by worker threads would interleave their
        # transactions; the in-memory adapters serve that purpose instead.
        raise ValueError("in-memory SQLite is not supported: give a file, sqlite:///path")
    if not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa_create_engine(
        url,
        connect_args={"check_same_thread": False},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={max(0, int(busy_timeout_ms))}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


@contextmanager
def dependency_errors(dependency: str) -> Iterator[None]:
    """Re-raise database connectivity failures as DependencyUnavailable.

    Operational and interface errors (refused, timed out, cancelled statement,
    locked SQLite file), an exhausted pool, and any DB-API error that invalidated
    its connection become ``DependencyUnavailable(dependency, <error class name>)``;
    the message never holds the URL, SQL or parameters (the cause keeps them).
    Other errors (integrity, programming) pass through: they are bugs, not outages.
    """
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise DependencyUnavailable(dependency, type(exc).__name__) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DependencyUnavailable(dependency, type(exc).__name__) from exc
        raise
    except ValueError as exc:
        # psycopg2 refuses NUL characters and lone surrogates before sending anything.
        if isinstance(exc, UnicodeError) or "NUL" in str(exc):
            raise InvalidInput("text must be valid Unicode without NUL characters") from exc
        raise


# Engines whose schema this process has prepared; run_sql prepares the others first.
_PREPARED: weakref.WeakSet[Engine] = weakref.WeakSet()


def prepare_schema(engine: Engine, *, dependency: str = "database") -> SchemaChange:
    """Migrate the schema to this release's head (:mod:`adapters.sql.migrate`).

    Safe on every boot and from several instances at once: the migrations run in
    one transaction that first takes the schema lock, so the first instance
    migrates and the others find the head. On PostgreSQL that is a
    transaction-scoped advisory lock (it also works behind a transaction pooler),
    and the DDL commits or rolls back as a whole; on SQLite, ``BEGIN IMMEDIATE``
    (the database's write lock, waited for up to the busy timeout). A schema made
    by ``create_all`` before migrations is stamped as the baseline, then upgraded.
    Raises DependencyUnavailable as :func:`dependency_errors` does.
    :func:`run_sql` calls it on an engine's first use, so a service started while
    its database was down migrates once the database answers.
    """
    with dependency_errors(dependency), engine.begin() as connection:
        lock_schema(connection)
        change = upgrade(connection)
    _PREPARED.add(engine)
    if change.changed or change.unknown:
        log.log(logging.WARNING if change.unknown else logging.INFO, "%s", change.describe())
    return change


def lock_schema(connection: Connection) -> None:
    """Take the schema lock for the rest of ``connection``'s transaction (its first
    statement on SQLite, where ``BEGIN IMMEDIATE`` opens the transaction)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


DEFAULT_CALL_TIMEOUT = 10.0


async def run_sql(
    engine: Engine,
    dependency: str,
    work: Callable[[Connection], T],
    *,
    seconds: float = DEFAULT_CALL_TIMEOUT,
) -> T:
    """Run ``work`` in one transaction on a worker thread, bounded by ``seconds``
    (the schema prepared first if this process has not done so yet).

    A database that stops answering (a black-holed connection: no error, no reply)
    becomes ``DependencyUnavailable(dependency, "Timeout")`` raised here, inside the
    caller's circuit breaker, so hangs count as failures and open the circuit. The
    worker thread itself stays blocked until TCP keepalives give up on the socket.
    """

    def call() -> T:
        if engine not in _PREPARED:
            prepare_schema(engine, dependency=dependency)
        with dependency_errors(dependency), engine.begin() as connection:
            return work(connection)

    return await _bounded(call, dependency, seconds)


async def prepare_schema_within(engine: Engine, dependency: str, seconds: float) -> None:
    """:func:`prepare_schema` on a worker thread, bounded by ``seconds`` as
    :func:`run_sql` is (a hang raises ``DependencyUnavailable(dependency, "Timeout")``)."""
    await _bounded(lambda: prepare_schema(engine, dependency=dependency), dependency, seconds)


async def _bounded(call: Callable[[], T], dependency: str, seconds: float) -> T:
    try:
        async with asyncio.timeout(seconds):
            return await asyncio.to_thread(call)
    except TimeoutError:
        raise DependencyUnavailable(dependency, "Timeout") from None
