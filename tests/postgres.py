"""A throw-away PostgreSQL database for tests that need the real server.

The server is the local one (``postgresql://postgres@127.0.0.1:5432/postgres``) unless
``RAG_TEST_POSTGRES_URL`` names another (its database is only used to create and drop
the test databases). An unreachable server FAILS the test: CI has one, and a silent
skip would hide the whole PostgreSQL half of the suite.

Use :func:`fresh_database` directly, or import the ``postgres_url`` fixture (one
database per test module) into a test module.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from psycopg2.extensions import connection as PgConnection
from sqlalchemy import make_url

from adapters.sql.engine import redact

BASE_URL_VARIABLE = "RAG_TEST_POSTGRES_URL"
DEFAULT_BASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def base_url() -> str:
    return os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL


def _admin_connection(url: str) -> PgConnection:
    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg2.connect(libpq_url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        # libpq names the host and port, never the password.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    else:
        connection.autocommit = True
        return connection
    pytest.fail(
        f"PostgreSQL is not reachable at {redact(url)}: {reason}. "
        "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
        f"or point {BASE_URL_VARIABLE} at a server.",
        pytrace=False,
    )


@contextmanager
def fresh_database(url: str | None = None) -> Iterator[str]:
    """Create an empty database ``rag_test_<random>``, yield its SQLAlchemy URL
    (``postgresql://...``, password included), and drop it (forcefully) afterwards."""
    admin_url = url or base_url()
    name = f"rag_test_{secrets.token_hex(6)}"
    admin = _admin_connection(admin_url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The URL of an empty database, shared by the tests of one module."""
    with fresh_database() as url:
        yield url
