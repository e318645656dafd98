"""The HTTP app over the fully in-memory container (no sockets, no files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app

ADMIN = "test-admin-key"

DOCS = [
    {
        "path": "docs/week3/ros2-nodes-topics.md",
        "text": "---\ntitle: Nodes and Topics\n---\n# Nodes and Topics\n\n## Topics\n\n"
        "A topic is a named bus over which nodes exchange messages. "
        "Publishers send messages to a topic and subscribers receive them.\n",
    },
    {
        "path": "docs/week6/gazebo.md",
        "text": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
    },
]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_api_key": ADMIN,
        "cors_allowed_origins": "https://book.example",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    s = settings()
    application = create_app(s, await in_memory_container(s))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def ingest(
    client: httpx.AsyncClient, documents: list[dict[str, str]], scope: str | None = "docs/"
) -> httpx.Response:
    return await client.post(
        "/ingest",
        json={"documents": documents, "scope": scope},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )


async def test_root_reports_online(client: httpx.AsyncClient) -> None:
    body = (await client.get("/")).json()
    assert body["status"] == "online" and body["version"]


async def test_chat_answers_with_cited_sources(client: httpx.AsyncClient) -> None:
    assert (await ingest(client, DOCS)).status_code == 200
    response = await client.post("/chat", json={"query": "What is a topic in ROS 2?"})
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "extractive" and body["session_id"] is None
    assert body["sources"], body
    first = body["sources"][0]
    assert first["url"] == "/docs/week3/ros2-nodes-topics"
    assert first["title"] == "Nodes and Topics"
    assert "Topics" in first["heading_path"]
    numbers = {s["number"] for s in body["sources"]}
    assert all(f"[{n}]" in body["response"] for n in numbers)


async def test_ingest_is_a_diff(client: httpx.AsyncClient) -> None:
    first = (await ingest(client, DOCS)).json()
    assert first["documents_added"] == 2 and first["chunks_written"] >= 2
    again = (await ingest(client, DOCS)).json()
    assert again["documents_unchanged"] == 2 and again["chunks_written"] == 0
    removed = (await ingest(client, DOCS[:1])).json()
    assert removed["documents_removed"] == 1 and removed["chunks_deleted"] >= 1


async def test_ingest_requires_the_admin_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/ingest", json={"documents": []})
    assert response.status_code == 401
    wrong = await client.post(
        "/ingest", json={"documents": []}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    "body",
    [{}, {"query": ""}, {"query": "x" * 4001}, {"query": "ok", "selected_text": "y" * 20001}],
)
async def test_bad_chat_input_is_a_422_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post("/chat", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_selected_text_is_the_primary_source(client: httpx.AsyncClient) -> None:
    await ingest(client, DOCS)
    selection = "Gazebo uses the ODE physics engine by default."
    body = (
        await client.post(
            "/chat", json={"query": "Which physics engine?", "selected_text": selection}
        )
    ).json()
    assert body["sources"][0]["number"] == 1
    assert body["sources"][0]["chunk_id"] is None
    assert "[1]" in body["response"]


async def test_health_routes(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert (await client.get("/health/live")).json() == {"status": "alive"}
    assert (await client.get("/health/ready")).json() == {"status": "ready"}


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith junk"})
    assert generated.headers["x-request-id"] not in ("", "bad id\twith junk")


async def test_cors_allows_listed_origin_only(client: httpx.AsyncClient) -> None:
    allowed = await client.get("/", headers={"Origin": "https://book.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://book.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    denied = await client.get("/", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers


async def test_cors_origin_regex() -> None:
    s = settings(cors_origin_regex=r"https://.*\.hf\.space")
    application = create_app(s, await in_memory_container(s))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        ok = await c.get("/", headers={"Origin": "https://me-book.hf.space"})
        assert ok.headers["access-control-allow-origin"] == "https://me-book.hf.space"
        bad = await c.get("/", headers={"Origin": "https://hf.space.evil.example"})
        assert "access-control-allow-origin" not in bad.headers


async def test_circuits_report_each_dependency(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health/circuits")).json()
    assert {"openai", "qdrant"} <= set(body)
    assert body["qdrant"]["state"] == "closed" and body["qdrant"]["failure_count"] == 0


async def test_metrics_parse_and_count_upstream_calls_and_routes(client: httpx.AsyncClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    await ingest(client, DOCS)
    await client.post("/chat", json={"query": "What is a topic?"})
    response = await client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    upstream = {
        s.labels["dependency"]
        for s in families["rag_upstream_call_duration_seconds"].samples
        if s.name.endswith("_count") and s.value > 0
    }
    assert "qdrant" in upstream  # the index's calls went through its breaker
    routes = {
        s.labels["route"]
        for s in families["rag_http_requests"].samples
        if s.name == "rag_http_requests_total"
    }
    assert {"/chat", "/ingest"} <= routes
    states = {
        (s.labels["dependency"], s.labels["state"])
        for s in families["rag_circuit_state"].samples
        if s.value == 1
    }
    assert ("qdrant", "closed") in states


DEV_ORIGINS = [
    "http://localhost:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3001",
]


async def allowed_origins(s: Settings, origins: list[str]) -> list[str]:
    application = create_app(s, await in_memory_container(s))
    transport = httpx.ASGITransport(app=application)
    found = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for origin in origins:
            preflight = await c.options(
                "/chat",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            if preflight.headers.get("access-control-allow-origin") == origin:
                found.append(origin)
    return found


async def test_local_without_cors_settings_allows_the_docusaurus_dev_server() -> None:
    local = Settings(_env_file=None, app_env="local")
    others = ["http://localhost:5173", "http://localhost", "https://localhost:3000"]
    assert await allowed_origins(local, DEV_ORIGINS + others) == DEV_ORIGINS


async def test_explicit_cors_settings_replace_the_local_defaults() -> None:
    listed = Settings(_env_file=None, cors_allowed_origins="http://localhost:8000")
    assert await allowed_origins(listed, [*DEV_ORIGINS, "http://localhost:8000"]) == [
        "http://localhost:8000"
    ]
    pattern = Settings(_env_file=None, cors_origin_regex=r"https://.*\.example")
    assert await allowed_origins(pattern, DEV_ORIGINS) == []


async def test_production_needs_an_explicit_list_or_pattern() -> None:
    production = Settings(
        _env_file=None,
        app_env="production",
        openai_api_key=SecretStr("sk-test"),
        qdrant_url="https://qdrant.example",
        database_url=SecretStr("postgresql://u:p@db.example/db"),
        better_auth_secret=SecretStr("s" * 32),
    )
    assert await allowed_origins(production, DEV_ORIGINS) == []
