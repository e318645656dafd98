"""The ContentCache on SQL (PostgreSQL or SQLite) through SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sql.engine import DEFAULT_CALL_TIMEOUT, run_sql
from adapters.sql.schema import content_cache
from adapters.system import SystemClock
from rag_core.ports import Clock
from rag_core.storable import unstorable
from rag_core.transforms import check_cache_key

T = TypeVar("T")


class SqlContentCache:
    """Transformed texts in ``content_cache`` (see :mod:`adapters.sql.schema`; run
    :func:`adapters.sql.engine.prepare_schema` first).

    Implements :class:`rag_core.transforms.ContentCache`: ``put`` inserts or, when the key
    is known, does nothing (``ON CONFLICT DO NOTHING``), so concurrent writers of one key
    never fail and the first value stays. A key that breaks the port's rule raises
    InvalidInput; a value no database can hold (:func:`rag_core.storable.unstorable`:
    PostgreSQL text takes no NUL, neither driver a lone surrogate) is not stored, on
    SQLite too, for one behaviour everywhere.

    Blocking work runs in a worker thread. Connection failures, timeouts and an exhausted
    pool raise ``DependencyUnavailable(dependency, <error class name>)``. Supports the
    ``postgresql`` and ``sqlite`` dialects (else ``ValueError``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        dependency: str = "database",
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported SQL dialect {engine.dialect.name!r}")
        self._engine = engine
        self._insert = (
            postgresql.insert(content_cache)
            if engine.dialect.name == "postgresql"
            else sqlite.insert(content_cache)
        ).on_conflict_do_nothing(index_elements=["key"])
        self._clock: Clock = clock or SystemClock()
        self._dependency = dependency
        self._timeout = timeout

    async def get(self, key: str) -> str | None:
        check_cache_key(key)
        query = select(content_cache.c.value).where(content_cache.c.key == key)

        def work(connection: Connection) -> str | None:
            return connection.execute(query).scalar_one_or_none()

        return await self._run(work)

    async def put(self, key: str, value: str) -> None:
        check_cache_key(key)
        if unstorable(value) is not None:
            return
        row = {"key": key, "value": value, "created_at": self._clock.now()}

        def work(connection: Connection) -> None:
            connection.execute(self._insert, row)

        await self._run(work)

    async def probe(self) -> None:
        def work(connection: Connection) -> None:
            connection.execute(text("SELECT 1"))

        await self._run(work)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await run_sql(self._engine, self._dependency, work, seconds=self._timeout)
