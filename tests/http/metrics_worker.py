"""A worker-like process for test_metrics_workers.py: run with PROMETHEUS_MULTIPROC_DIR
set, it builds the app over the in-memory container as a worker of ``serve`` does, runs
its lifespan (so its gauges are published every HEALTH_INTERVAL, the first argument),
prints ``{"pid": ...}``, then answers one JSON command per stdin line with one JSON line:

- ``{"get": path}`` or ``{"post": path, "json": body}``: ``{"status": ..., "text": ...}``;
- ``{"trip": circuit}``: a counted failure on that circuit's breaker (threshold 1: open);
- ``{"pending": n}``: the outbox now has ``n`` entries waiting.

It stops when stdin closes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from rag_core.errors import DependencyUnavailable


def reply(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def main(health_interval: float) -> None:
    settings = Settings(
        _env_file=None,
        health_interval=health_interval,
        qdrant_breaker_threshold=1,
        qdrant_breaker_recovery=3600,
    )
    container = await in_memory_container(settings)
    app = create_app(settings, container)
    pending = 0
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://worker") as client,
    ):
        # The in-memory database has no outbox: this worker pretends it has one.
        app.state.metrics.watch_outbox(lambda: pending)
        reply({"pid": os.getpid()})
        while line := await asyncio.to_thread(sys.stdin.readline):
            command = json.loads(line)
            if "get" in command or "post" in command:
                if "get" in command:
                    response = await client.get(command["get"])
                else:
                    response = await client.post(command["post"], json=command["json"])
                reply({"status": response.status_code, "text": response.text})
            elif "trip" in command:
                breaker = next(b for b in container.breakers if b.name == command["trip"])
                breaker.record_failure(DependencyUnavailable(breaker.name, "tripped by the test"))
                reply({})
            elif "pending" in command:
                pending = command["pending"]
                reply({})
            else:
                raise ValueError(f"unknown command {command}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
