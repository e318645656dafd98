"""Alembic's environment for the SQL adapters' schema.

Only :mod:`adapters.sql.migrate` runs it: it hands over a connection, already in the
transaction that holds the schema lock, as ``config.attributes["connection"]``, so
the migrations run in that transaction (PostgreSQL: all or nothing; SQLite: under
``BEGIN IMMEDIATE``). Offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context

from adapters.sql.migrate import render_item
from adapters.sql.schema import metadata


def run_migrations() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run the migrations through adapters.sql.migrate (rag-backend db upgrade), "
            "which passes a locked connection"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Autogenerate writes ALTERs as batch operations: SQLite copies the table,
        # PostgreSQL alters it in place, so one migration serves both.
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        on_version_apply=context.config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
