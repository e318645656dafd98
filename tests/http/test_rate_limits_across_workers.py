"""Rate limits across the worker processes of one container: with WORKERS > 1 every
app built by ``create_app`` counts in the same file of DATA_DIR, so two workers
together admit one policy's rate; a single process counts alone, in memory.

Each app stands for a worker (its own container, its own ASGI client): what they
share is DATA_DIR, as the workers of one container do."""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.rate_limits.gcra import Arrivals
from adapters.rate_limits.memory import MemoryArrivals
from adapters.rate_limits.sqlite import SqliteArrivals
from adapters.settings import Settings
from entrypoints import cli
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from entrypoints.http.rate_limit import STATE_KEY
from entrypoints.http.rate_limiter import RateLimiter


def settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "rate_limit_chat": "3/minute"}
    return Settings(_env_file=None, **{**values, **overrides})


class Worker:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @property
    def store(self) -> Arrivals:
        limiter: RateLimiter = getattr(self.app.state, STATE_KEY)
        return limiter.store

    async def chat(self, address: str = "203.0.113.5") -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/chat", json={"query": "What is a topic?"})


@contextlib.asynccontextmanager
async def worker(config: Settings) -> AsyncIterator[Worker]:
    app = create_app(config, await in_memory_container(config, password_cost=4))
    async with app.router.lifespan_context(app):
        yield Worker(app)


async def chat(worker: Worker, address: str = "203.0.113.5") -> int:
    return (await worker.chat(address)).status_code


async def test_two_workers_share_one_allowance(tmp_path: Path) -> None:
    config = settings(tmp_path, workers=2)
    async with worker(config) as one, worker(config) as two:
        assert isinstance(one.store, SqliteArrivals) and isinstance(two.store, SqliteArrivals)
        assert [await chat(one), await chat(two), await chat(one)] == [200, 200, 200]
        refused = await two.chat()
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"
        assert await chat(one) == 429
    assert (tmp_path / "rate-limits.db").exists()


async def test_single_processes_count_alone_in_memory(tmp_path: Path) -> None:
    for workers in [None, 1]:
        config = settings(tmp_path / str(workers), workers=workers)
        async with worker(config) as one, worker(config) as two:
            assert isinstance(one.store, MemoryArrivals)
            assert [await chat(one) for _ in range(4)] == [200, 200, 200, 429]
            assert [await chat(two) for _ in range(4)] == [200, 200, 200, 429]
        assert not (tmp_path / str(workers) / "rate-limits.db").exists()


async def test_disabled_limits_open_no_file(tmp_path: Path) -> None:
    config = settings(tmp_path, workers=4, rate_limit_enabled=False)
    async with worker(config) as one, worker(config) as two:
        assert isinstance(one.store, MemoryArrivals)
        assert {await chat(c) for c in [one, two] for _ in range(5)} == {200}
    assert not (tmp_path / "rate-limits.db").exists()


async def test_a_locked_shared_file_admits_rather_than_failing(tmp_path: Path) -> None:
    config = settings(tmp_path, workers=2, rate_limit_chat="1/minute")
    async with worker(config) as one:
        assert await chat(one) == 200
        holder = sqlite3.connect(tmp_path / "rate-limits.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            async with worker(config) as two:
                # Refusing only reads, which a writer does not block; admitting a new
                # client needs the lock, held past the 50 ms: admitted, uncounted.
                assert await chat(two) == 429
                assert await chat(two, "198.51.100.7") == 200
                assert await chat(two, "198.51.100.7") == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert await chat(one) == 429
        assert await chat(one, "198.51.100.7") == 200  # unlocked: counted again
        assert await chat(one, "198.51.100.7") == 429


def test_a_service_held_to_one_process_counts_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WORKERS=4 with an in-memory database serves one process (entrypoints.workers): the
    # app it builds must not pay for a file no other process reads.
    served: list[Settings] = []

    def serve_app(settings: Settings) -> int:
        served.append(settings)
        return 0

    monkeypatch.setattr(cli, "serve_app", serve_app)
    args = argparse.Namespace(ingest=None, host=None, port=None, demo=None)
    assert cli._serve(settings(tmp_path, workers=4, database="memory"), args) == 0
    app = create_app(served[0], container=None)
    assert isinstance(getattr(app.state, STATE_KEY).store, MemoryArrivals)
