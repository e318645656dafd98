"""Engines for the SQL adapters' contract suites: a fresh SQLite file per test,
and one fresh PostgreSQL database per test module (each test empties its tables)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.sql.engine import create_engine_for, prepare_schema
from postgres import fresh_database


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'db' / 'store.sqlite3'}")
    prepare_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[Engine]:
    with fresh_database() as url:
        engine = create_engine_for(url)
        prepare_schema(engine)
        yield engine
        engine.dispose()
