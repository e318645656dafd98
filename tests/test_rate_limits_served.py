"""`rag-backend serve` with two worker processes counts one rate limit: the real
supervisor and workers (tests/test_workers.py's harness), the fake Qdrant server.

Which worker takes a connection is the kernel's choice, so this shows the wiring (the
workers count in DATA_DIR's file); tests/http/test_rate_limits_across_workers.py shows
deterministically that two apps on one DATA_DIR share the allowance."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes.qdrant_server import FakeQdrantServer
from test_workers import Served, _env


@pytest.fixture
def qdrant() -> Iterator[FakeQdrantServer]:
    with FakeQdrantServer() as server:
        yield server


def test_the_workers_of_a_service_share_one_allowance(
    tmp_path: Path, qdrant: FakeQdrantServer
) -> None:
    env = _env(tmp_path, qdrant, RATE_LIMIT_SIGN_IN="4/minute")
    service = Served(env, tmp_path)
    try:
        service.wait_ready()
        assert len(service.workers()) == 2
        statuses = [
            # A connection each: the kernel hands them to either worker.
            httpx.post(
                f"{service.base}/api/auth/sign-in/email",
                json={"email": f"nobody{i}@example.com", "password": "not this one"},
                timeout=30,
            ).status_code
            for i in range(10)
        ]
    finally:
        output = service.stop()
    assert statuses == [401] * 4 + [429] * 6, output
    with sqlite3.connect(tmp_path / "data" / "rate-limits.db") as db:
        kept = db.execute("SELECT key FROM arrivals WHERE policy = 'sign-in'").fetchall()
    assert kept == [("address:127.0.0.1",)]
