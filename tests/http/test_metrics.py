"""Prometheus metrics: a small app with the middleware and the /metrics router,
scraped and parsed as Prometheus would."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Message, Receive, Scope, Send

from entrypoints.http.metrics import Metrics, MetricsMiddleware, metrics_router
from entrypoints.http.request_id import RequestIdMiddleware
from rag_core.ingestion import IngestReport

Labels = dict[str, str]


class Steps:
    """A fake clock: every reading is 0.25 s after the previous one."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def build_app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    app.include_router(metrics_router(metrics))

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(404, "no such item")
        return {"id": item_id}

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    @app.get("/stream")
    async def stream() -> EventSourceResponse:
        async def events() -> AsyncIterator[ServerSentEvent]:
            # What a scrape would see while this stream is open.
            yield ServerSentEvent(
                data=str(value(metrics.render().decode(), "rag_streams_in_flight"))
            )

        return EventSourceResponse(events())

    app.add_middleware(MetricsMiddleware, metrics=metrics, clock=Steps())
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return response.text


def samples(text: str, name: str) -> Iterator[tuple[Labels, float]]:
    """The samples named ``name`` (e.g. ``rag_http_requests_total``)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def value(text: str, name: str, **labels: str) -> float | None:
    found = [
        v for sample_labels, v in samples(text, name) if labels.items() <= sample_labels.items()
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    for item_id in (1, 2, 3, 404):
        await client.get(f"/items/{item_id}")
    text = await scrape(client)
    counted = {
        (labels["method"], labels["route"], labels["status"]): v
        for labels, v in samples(text, "rag_http_requests_total")
    }
    assert counted == {
        ("GET", "/items/{item_id}", "200"): 3.0,
        ("GET", "/items/{item_id}", "404"): 1.0,
    }
    assert "/items/1" not in text and "/items/404" not in text


async def test_latency_is_a_histogram_per_route(client: httpx.AsyncClient) -> None:
    await client.get("/items/1")
    await client.get("/items/2")
    text = await scrape(client)
    route = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
    assert value(text, "rag_http_request_duration_seconds_count", **route) == 2.0
    # The fake clock makes every request take 0.25 s.
    assert value(text, "rag_http_request_duration_seconds_sum", **route) == 0.5
    assert value(text, "rag_http_request_duration_seconds_bucket", le="0.1", **route) == 0.0
    assert value(text, "rag_http_request_duration_seconds_bucket", le="0.25", **route) == 2.0


async def test_the_scrape_itself_is_counted_next_time(client: httpx.AsyncClient) -> None:
    await scrape(client)
    text = await scrape(client)
    assert value(text, "rag_http_requests_total", route="/metrics", status="200") == 1.0


async def test_unknown_paths_share_one_label(client: httpx.AsyncClient) -> None:
    for path in ("/wp-admin", "/a/b/c", "/items"):
        assert (await client.get(path)).status_code == 404
    text = await scrape(client)
    assert value(text, "rag_http_requests_total", route="unmatched", status="404") == 3.0
    assert "wp-admin" not in text


async def test_odd_methods_share_one_label(client: httpx.AsyncClient) -> None:
    assert (await client.request("BREW", "/items/1")).status_code == 405
    text = await scrape(client)
    assert value(text, "rag_http_requests_total", method="other", route="/items/{item_id}") == 1


async def test_an_unhandled_error_counts_as_a_500(client: httpx.AsyncClient) -> None:
    assert (await client.post("/boom")).status_code == 500
    text = await scrape(client)
    assert value(text, "rag_http_requests_total", route="/boom", status="500") == 1.0


async def test_streams_are_in_flight_while_they_stream(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream")
    assert "data: 1.0" in response.text
    text = await scrape(client)
    assert value(text, "rag_streams_in_flight") == 0.0
    assert value(text, "rag_http_requests_total", route="/stream", status="200") == 1.0


async def test_upstream_calls_have_latency_and_errors(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    metrics.observe_upstream("openai", 1.5)
    metrics.observe_upstream("openai", 10.0, "ReadTimeout")
    metrics.observe_upstream("qdrant", 0.02, "circuit_open")
    metrics.observe_upstream("qdrant", 0.02, "connection to db.example:5432 refused")
    text = await scrape(client)
    name = "rag_upstream_call_duration_seconds_count"
    assert value(text, name, dependency="openai", outcome="ok") == 1.0
    assert value(text, name, dependency="openai", outcome="error") == 1.0
    errors = {
        (labels["dependency"], labels["error"]): v
        for labels, v in samples(text, "rag_upstream_errors_total")
    }
    assert errors == {
        ("openai", "ReadTimeout"): 1.0,
        ("qdrant", "circuit_open"): 1.0,
        ("qdrant", "other"): 1.0,
    }
    assert "db.example" not in text


async def test_circuit_states_are_read_at_scrape_time(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    states = {"openai": "closed", "qdrant": "open"}
    metrics.watch_circuits(lambda: states.items())
    first = await scrape(client)
    assert value(first, "rag_circuit_state", dependency="openai", state="closed") == 1.0
    assert value(first, "rag_circuit_state", dependency="openai", state="open") == 0.0
    assert value(first, "rag_circuit_state", dependency="qdrant", state="open") == 1.0
    states["qdrant"] = "half_open"
    second = await scrape(client)
    assert value(second, "rag_circuit_state", dependency="qdrant", state="open") == 0.0
    assert value(second, "rag_circuit_state", dependency="qdrant", state="half_open") == 1.0


async def test_outbox_pending_is_read_at_scrape_time(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    pending = [3]
    metrics.watch_outbox(lambda: pending[0])
    assert value(await scrape(client), "rag_outbox_pending") == 3.0
    pending[0] = 0
    assert value(await scrape(client), "rag_outbox_pending") == 0.0


async def test_a_failing_callback_leaves_only_its_metric_out(
    client: httpx.AsyncClient, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> int:
        raise ConnectionError("postgres://u:pw@db is down")

    metrics.watch_outbox(broken)
    metrics.watch_circuits(lambda: [("openai", "closed")])
    with caplog.at_level(logging.WARNING):
        text = await scrape(client)
    assert value(text, "rag_outbox_pending") is None
    assert value(text, "rag_circuit_state", dependency="openai", state="closed") == 1.0
    assert "outbox pending count failed (ConnectionError)" in caplog.text
    assert "pw@db" not in caplog.text


async def test_ingestion_and_rate_limits_are_counted(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    metrics.record_ingest(
        IngestReport(
            documents_added=2,
            documents_changed=1,
            documents_unchanged=5,
            documents_removed=1,
            chunks_written=12,
            embedding_calls=3,
        )
    )
    metrics.record_ingest(IngestReport(documents_added=1, chunks_written=4, embedding_calls=1))
    metrics.record_rate_limited("chat")
    text = await scrape(client)
    documents = {labels["change"]: v for labels, v in samples(text, "rag_ingest_documents_total")}
    assert documents == {"added": 3.0, "changed": 1.0, "unchanged": 5.0, "removed": 1.0}
    assert value(text, "rag_ingest_chunks_written_total") == 16.0
    assert value(text, "rag_ingest_embedding_calls_total") == 4.0
    assert value(text, "rag_rate_limited_requests_total", policy="chat") == 1.0


async def test_each_app_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    for metrics, requests in ((one, 2), (two, 1)):
        transport = httpx.ASGITransport(app=build_app(metrics))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            for _ in range(requests):
                await c.get("/items/1")
    assert value(one.render().decode(), "rag_http_requests_total", route="/items/{item_id}") == 2
    assert value(two.render().decode(), "rag_http_requests_total", route="/items/{item_id}") == 1


async def test_process_metrics_are_included(client: httpx.AsyncClient) -> None:
    assert value(await scrape(client), "rag_process_resident_memory_bytes") is not None


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    metrics = Metrics(process=False)
    await MetricsMiddleware(app, metrics)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
    assert value(metrics.render().decode(), "rag_http_requests_total") is None
