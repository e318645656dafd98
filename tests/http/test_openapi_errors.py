"""The error statuses in /openapi.json are the ones the app answers.

Each scenario provokes an error on the full app (in-memory container, no chat
model) and checks that the status it got is declared for that operation in the
document the app serves, with the shared body: ``ErrorBody`` (``{"detail": str}``)
for every error but 422, whose ``detail`` is a string too, with the reasons beside it
(``{"detail": str, "errors": [{"loc", "msg", "type"}]}``).
tests/fuzz/test_openapi_fuzz.py checks the same for generated requests
(``status_code_conformance``); these reach what fuzzing does not: another user's
session, a taken email, a refused admin key, an open circuit, a rate limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapters.memory.index import InMemoryIndex
from adapters.settings import Settings
from entrypoints.container import Container, in_memory_container
from entrypoints.http.app import create_app
from entrypoints.http.responses import ErrorBody
from rag_core.errors import DependencyUnavailable, IndexMismatch

ADMIN = "test-admin-key"
DOCUMENT = {"path": "docs/topics.md", "text": "# Topics\n\nA topic is a named bus.\n"}
PASSWORD = "correct horse battery"
JSON = {"Content-Type": "application/json"}
UNREADABLE = b'{"text": "\xff"}'  # JSON, but not UTF-8: FastAPI's 400, not a 422
ERROR_BODY = "#/components/schemas/ErrorBody"
VALIDATION_BODY = "#/components/schemas/HTTPValidationError"


class Api:
    """A client of one app that checks every answer it gets against the app's document."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, document: dict[str, Any]) -> None:
        self.app = app
        self.client = client
        self.document = document

    @property
    def container(self) -> Container:
        container: Container = self.app.state.container
        return container

    async def expect(
        self,
        status: int,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        absent: tuple[str, ...] = (),
        **request: Any,
    ) -> httpx.Response:
        """Send ``method path`` (a template; ``params`` fill it), check that it answers
        ``status``, that the operation declares it, and that the body is the declared one.
        ``absent``: declared headers this case must not send (e.g. no Retry-After when
        waiting cannot help)."""
        url = path.format(**(params or {}))
        response = await self.client.request(method, url, **request)
        assert response.status_code == status, (method, url, response.text)
        operation = self.document["paths"][path][method.lower()]
        declared = operation["responses"]
        assert str(status) in declared, f"{method} {path} answers {status}, declares {declared}"
        schema = declared[str(status)]["content"]["application/json"]["schema"]
        if status == 422:
            assert schema == {"$ref": VALIDATION_BODY}
            body = response.json()
            assert isinstance(body["detail"], str) and body["detail"]
            assert body["errors"] and all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
        else:
            assert schema == {"$ref": ERROR_BODY}
            ErrorBody.model_validate(response.json())
        for header in declared[str(status)].get("headers", {}):
            if header in absent:
                assert header.lower() not in response.headers, f"{status} sent {header}"
            else:
                assert response.headers.get(header), f"{status} declares {header}, sent none"
        return response

    async def sign_up(self, email: str) -> dict[str, str]:
        body = {"email": email, "name": "Reader", "password": PASSWORD}
        response = await self.client.post("/api/auth/sign-up", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['session']['accessToken']}"}

    async def new_session(self, auth: dict[str, str]) -> str:
        response = await self.client.post("/api/chat/sessions", json={}, headers=auth)
        assert response.status_code == 200, response.text
        session_id: str = response.json()["id"]
        return session_id

    def open_circuit(self, name: str) -> None:
        """The dependency's circuit breaker refuses every call (CircuitOpen, a 503)."""
        breaker = next(b for b in self.container.breakers if b.name == name)
        for _ in range(breaker.snapshot().failure_threshold):
            breaker.record_failure(DependencyUnavailable(name, "down for the test"))
        assert breaker.snapshot().state == "open"


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[ApiFactory]:
    """``await make_api(**settings)``: a started app (rate limits off unless asked)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(index: InMemoryIndex | None = None, **overrides: Any) -> Api:
            values: dict[str, Any] = {"admin_api_key": ADMIN, "rate_limit_enabled": False}
            settings = Settings(_env_file=None, **{**values, **overrides})
            container = await in_memory_container(settings, password_cost=4, index=index)
            app = create_app(settings, container)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://test")
            await stack.enter_async_context(client)
            document = (await client.get("/openapi.json")).json()
            return Api(app, client, document)

        yield make


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    return await make_api()


SESSION_ROUTES = [
    ("GET", "/api/chat/sessions/{session_id}", None),
    ("DELETE", "/api/chat/sessions/{session_id}", None),
    ("PATCH", "/api/chat/sessions/{session_id}/title", {"title": "renamed"}),
    ("GET", "/api/chat/sessions/{session_id}/export", None),
]


async def test_session_routes_declare_401_403_404(api: Api) -> None:
    owner, other = await api.sign_up("owner@example.com"), await api.sign_up("other@example.com")
    mine = {"session_id": await api.new_session(owner)}
    unknown = {"session_id": "no-such-session"}
    for method, path, body in SESSION_ROUTES:
        await api.expect(401, method, path, params=mine, json=body)
        await api.expect(403, method, path, params=mine, json=body, headers=other)
        await api.expect(404, method, path, params=unknown, json=body, headers=owner)
    await api.expect(401, "GET", "/api/chat/sessions")
    await api.expect(401, "POST", "/api/chat/sessions", json={})
    await api.expect(401, "DELETE", "/api/chat/history")
    bad_token = {"Authorization": "Bearer not-a-token"}
    await api.expect(401, "GET", "/api/chat/sessions", headers=bad_token)
    await api.expect(
        400, "PATCH", SESSION_ROUTES[2][1], params=mine, content=UNREADABLE, headers=JSON
    )


async def test_history_routes_declare_503_when_the_database_is_down(api: Api) -> None:
    owner = await api.sign_up("owner@example.com")
    owned = await api.new_session(owner)
    api.open_circuit("database")
    mine = {"session_id": owned}
    await api.expect(503, "GET", "/api/chat/sessions", headers=owner)
    await api.expect(503, "POST", "/api/chat/sessions", json={}, headers=owner)
    await api.expect(503, "DELETE", "/api/chat/history", headers=owner)
    for method, path, body in SESSION_ROUTES:
        await api.expect(503, method, path, params=mine, json=body, headers=owner)
    # A signed-in turn is stored: no database, no answer.
    await api.expect(503, "POST", "/chat", json={"query": "What is a topic?"}, headers=owner)


async def test_account_routes_declare_their_errors(api: Api) -> None:
    body = {"email": "reader@example.com", "name": "Reader", "password": PASSWORD}
    await api.sign_up("reader@example.com")
    await api.expect(409, "POST", "/api/auth/sign-up", json={**body, "email": "READER@example.com"})
    await api.expect(400, "POST", "/api/auth/sign-up", content=UNREADABLE, headers=JSON)
    wrong = {"email": "reader@example.com", "password": "not the password"}
    await api.expect(401, "POST", "/api/auth/sign-in/email", json=wrong)
    await api.expect(401, "GET", "/api/auth/profile")
    await api.expect(401, "POST", "/api/auth/profile/update", json={"learning_goals": "ROS"})


@pytest.mark.parametrize("path", ["/chat", "/chat/stream"])
async def test_asking_declares_401_403_404_400(api: Api, path: str) -> None:
    owner, other = await api.sign_up("owner@example.com"), await api.sign_up("other@example.com")
    owned = await api.new_session(owner)
    question = {"query": "What is a topic?"}
    await api.expect(401, "POST", path, json=question, headers={"Authorization": "Bearer x"})
    await api.expect(403, "POST", path, json={**question, "session_id": owned}, headers=other)
    await api.expect(404, "POST", path, json={**question, "session_id": "gone"}, headers=owner)
    await api.expect(422, "POST", path, json={"query": "   "})
    await api.expect(400, "POST", path, content=UNREADABLE, headers=JSON)


async def test_answering_routes_declare_503_when_the_index_is_down(api: Api) -> None:
    api.open_circuit("qdrant")
    question = {"query": "What is a topic?"}
    await api.expect(503, "POST", "/chat", json=question)
    await api.expect(503, "POST", "/chat/stream", json=question)
    completion = {"messages": [{"role": "user", "content": "What is a topic?"}]}
    await api.expect(503, "POST", "/v1/chat/completions", json=completion)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    await api.expect(503, "POST", "/ingest", json={"documents": [DOCUMENT]}, headers=admin)
    # The index is critical: the service is unhealthy and not ready meanwhile.
    await api.expect(503, "GET", "/health")
    await api.expect(503, "GET", "/health/ready")


async def test_transforms_declare_503_without_a_chat_model(api: Api) -> None:
    # No model configured: waiting cannot help, so no Retry-After.
    none = ("Retry-After",)
    await api.expect(503, "POST", "/translate", json={"text": "A topic is a bus."}, absent=none)
    batch = {"texts": ["A topic."], "target_level": "beginner"}
    await api.expect(503, "POST", "/adjust-content/batch", json=batch, absent=none)
    await api.expect(400, "POST", "/translate/batch", content=UNREADABLE, headers=JSON)


class MismatchedIndex(InMemoryIndex):
    """Prepared at start-up; any later ``prepare`` finds another layout."""

    started = False

    async def prepare(self, dense_dimension: int | None) -> None:
        if self.started:
            raise IndexMismatch("index holds dense dimension 8, asked for 16")
        self.started = True
        await super().prepare(dense_dimension)


async def test_ingest_declares_its_errors(make_api: ApiFactory) -> None:
    api = await make_api(index=MismatchedIndex())
    documents = {"documents": [DOCUMENT]}
    await api.expect(401, "POST", "/ingest", json=documents)
    await api.expect(401, "POST", "/ingest", json=documents, headers={"Authorization": "Bearer x"})
    admin = {"Authorization": f"Bearer {ADMIN}"}
    await api.expect(409, "POST", "/ingest", json=documents, headers=admin)
    await api.expect(422, "POST", "/ingest", json={"documents": [DOCUMENT] * 2}, headers=admin)
    await api.expect(400, "POST", "/ingest", content=UNREADABLE, headers=JSON | admin)
    disabled = await make_api(admin_api_key=None)
    await disabled.expect(403, "POST", "/ingest", json=documents, headers=admin)


async def test_rate_limited_routes_declare_429(make_api: ApiFactory) -> None:
    api = await make_api(
        rate_limit_enabled=True,
        rate_limit_chat="1/minute",
        rate_limit_transforms="1/minute",
        rate_limit_sign_in="1/minute",
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/chat", {"query": "What is a topic?"}),
        ("/translate", {"text": ""}),
        ("/api/auth/sign-in/email", {"email": "a@example.com", "password": PASSWORD}),
    ]
    for path, body in calls:
        await api.client.post(path, json=body)
        await api.expect(429, "POST", path, json=body)
    # Sign-up counts against the address's sign-in policy.
    body = {"email": "new@example.com", "name": "New", "password": PASSWORD}
    await api.expect(429, "POST", "/api/auth/sign-up", json=body)


def test_every_declared_error_has_the_shared_body() -> None:
    settings = Settings(_env_file=None, admin_api_key=SecretStr(ADMIN))
    document = create_app(settings).openapi()
    errors = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                errors += 1
                expected = VALIDATION_BODY if status == "422" else ERROR_BODY
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": expected}, (method, path, status)
                if status == "401":
                    assert "WWW-Authenticate" in response["headers"], (method, path)
                if status == "429" or (status == "503" and not path.startswith("/health")):
                    assert "Retry-After" in response["headers"], (method, path, status)
            if "requestBody" in operation:
                assert "400" in operation["responses"], f"{method} {path}: unreadable body"
    assert errors > 50


def test_the_validation_body_is_declared_with_a_text_detail() -> None:
    document = create_app(Settings(_env_file=None)).openapi()
    body = document["components"]["schemas"]["HTTPValidationError"]
    assert body["properties"]["detail"]["type"] == "string"
    assert body["required"] == ["detail", "errors"]
    errors = body["properties"]["errors"]
    assert errors["items"] == {"$ref": "#/components/schemas/ValidationError"}
    reason = document["components"]["schemas"]["ValidationError"]
    assert set(reason["properties"]) == {"loc", "msg", "type"}  # never the input


async def test_bodies_over_their_bound_declare_413(make_api: ApiFactory) -> None:
    api = await make_api(max_body_bytes=1024, max_ingest_body_bytes=4096)
    big = {"query": "x" * 2000}
    await api.expect(413, "POST", "/chat", json=big)
    await api.expect(413, "POST", "/chat/stream", json=big)
    body = {"email": "a@example.com", "name": "x" * 2000, "password": PASSWORD}
    await api.expect(413, "POST", "/api/auth/sign-up", json=body)
    await api.expect(413, "POST", "/translate/batch", json={"texts": ["x" * 2000]})
    admin = {"Authorization": f"Bearer {ADMIN}"}
    medium = {"path": "docs/topics.md", "text": "# Topics\n\n" + "A topic is a bus. " * 110}
    ingested = await api.client.post("/ingest", json={"documents": [medium]}, headers=admin)
    assert ingested.status_code == 200, ingested.text  # over the default bound, within /ingest's
    document = {"path": "docs/big.md", "text": "x" * 5000}
    await api.expect(413, "POST", "/ingest", json={"documents": [document]}, headers=admin)


def test_every_route_with_a_body_declares_413() -> None:
    document = create_app(Settings(_env_file=None)).openapi()
    with_body = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(with_body) > 10
    for method, path in with_body:
        declared = document["paths"][path][method]["responses"]
        assert "413" in declared, (method, path)
