"""The existing textbook frontend's calls, in its order, against the full app
(in-memory adapters, a scripted chat model), with the exact contract field names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from pydantic import SecretStr

from adapters.memory.models import ScriptedChatModel
from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from rag_core.markdown import parse_document
from rag_core.ports import ChatMessage

BOOK = {
    "docs/week3/ros2-nodes-topics.md": "# Nodes and Topics\n\n## Topics\n\nA topic is a named bus over which nodes exchange messages.\n",
    "docs/week6/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
}
USER_FIELDS = {"id", "email", "name", "proficiency", "emailVerified", "createdAt", "updatedAt"}
SESSION_FIELDS = {
    "id",
    "user_id",
    "title",
    "created_at",
    "updated_at",
    "is_active",
    "message_count",
}
MESSAGE_FIELDS = {"id", "session_id", "role", "content", "selected_text", "created_at", "sources"}


def reply(messages: Sequence[ChatMessage]) -> str:
    system = messages[0].content
    if system.startswith("Rewrite"):
        return "What is a ROS 2 topic?"
    if "Sources:" in system:
        return "A topic is a named bus [1]."
    return "ترجمہ: " + messages[-1].content  # translations and rewrites echo, marked


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, admin_api_key=SecretStr("admin-key-for-tests"))
    model = ScriptedChatModel(reply)
    container = await in_memory_container(settings, chat_model=model, password_cost=4)
    await container.ingestor.ingest([parse_document(p, t) for p, t in BOOK.items()])
    app = create_app(settings, container)
    app.state.model = model
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def sign_up(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    body = {
        "email": email,
        "name": "Reader",
        "password": "correct horse battery",
        "proficiency": "beginner",
    }
    response = await client.post("/api/auth/sign-up", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data["user"]) >= USER_FIELDS
    assert data["session"]["tokenType"] == "Bearer" and data["session"]["expiresAt"]
    return {"Authorization": f"Bearer {data['session']['accessToken']}"}


async def test_the_frontends_calls_in_order(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client, "Reader@Example.com")
    me = (await client.get("/api/auth/get-session", headers=auth)).json()
    assert me["user"]["email"] == "reader@example.com"

    profile = {
        "technical_background": "Python",
        "hardware_access": "Jetson",
        "learning_goals": "walk",
    }
    assert (await client.post("/api/auth/profile/update", json=profile, headers=auth)).json() == {
        "success": True
    }
    assert (await client.get("/api/auth/profile", headers=auth)).json()["profile"][
        "hardware_access"
    ] == "Jetson"

    first = (
        await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=auth)
    ).json()
    assert {"response", "session_id", "sources"} <= set(first)
    assert first["sources"][0]["url"] == "/docs/week3/ros2-nodes-topics"
    session_id = first["session_id"]
    follow = await client.post(
        "/chat", json={"query": "And who uses it?", "session_id": session_id}, headers=auth
    )
    assert follow.json()["session_id"] == session_id

    sessions = (await client.get("/api/chat/sessions?limit=20&offset=0", headers=auth)).json()[
        "sessions"
    ]
    assert [s["id"] for s in sessions] == [session_id]
    assert set(sessions[0]) >= SESSION_FIELDS and sessions[0]["message_count"] == 4

    detail = (await client.get(f"/api/chat/sessions/{session_id}", headers=auth)).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user", "assistant"]
    assert set(detail["messages"][1]) >= MESSAGE_FIELDS and detail["messages"][1]["sources"]

    renamed = await client.patch(
        f"/api/chat/sessions/{session_id}/title", json={"title": "Topics"}, headers=auth
    )
    assert renamed.json()["title"] == "Topics"
    text = (
        await client.get(f"/api/chat/sessions/{session_id}/export?format=text", headers=auth)
    ).json()
    assert text["format"] == "text" and "What is a ROS 2 topic?" in text["content"]
    js = (
        await client.get(f"/api/chat/sessions/{session_id}/export?format=json", headers=auth)
    ).json()
    assert js["format"] == "json" and '"role": "assistant"' in js["content"]

    translated = (await client.post("/translate", json={"text": "A topic is a bus."})).json()
    assert translated["translation"].startswith("ترجمہ")
    adjusted = (
        await client.post("/adjust-content", json={"text": "Kinematics.", "target_level": "pro"})
    ).json()
    assert adjusted == {"content": "Kinematics."}
    batch = (await client.post("/translate/batch", json={"texts": ["one", "two"]})).json()
    assert [t.split(": ", 1)[1] for t in batch["translations"]] == ["one", "two"]
    contents = (
        await client.post(
            "/adjust-content/batch", json={"texts": ["a", "b"], "target_level": "pro"}
        )
    ).json()
    assert contents == {"contents": ["a", "b"]}

    assert (await client.post("/api/auth/sign-out", headers=auth)).json() == {"success": True}
    assert (await client.get("/api/auth/get-session", headers=auth)).json() == {
        "user": None,
        "session": None,
    }
    assert (await client.post("/chat", json={"query": "hi"}, headers=auth)).status_code == 401


async def test_another_users_token_is_refused_on_every_session_route(
    client: httpx.AsyncClient,
) -> None:
    owner = await sign_up(client, "owner@example.com")
    other = await sign_up(client, "other@example.com")
    sid = (await client.post("/chat", json={"query": "What is a topic?"}, headers=owner)).json()[
        "session_id"
    ]
    calls = [
        ("GET", f"/api/chat/sessions/{sid}", None),
        ("DELETE", f"/api/chat/sessions/{sid}", None),
        ("PATCH", f"/api/chat/sessions/{sid}/title", {"title": "mine"}),
        ("GET", f"/api/chat/sessions/{sid}/export?format=json", None),
        ("POST", "/chat", {"query": "append?", "session_id": sid}),
        ("POST", "/chat/stream", {"query": "append?", "session_id": sid}),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=other)
        assert response.status_code == 403, (method, url, response.text)
    unknown = await client.get("/api/chat/sessions/does-not-exist", headers=owner)
    assert unknown.status_code == 404
    assert (await client.get(f"/api/chat/sessions/{sid}", headers=owner)).json()["session"][
        "message_count"
    ] == 2
    assert (await client.get("/api/chat/sessions")).status_code == 401


async def test_the_same_translation_twice_costs_one_model_call(client: httpx.AsyncClient) -> None:
    model: ScriptedChatModel = client.app.state.model  # type: ignore[attr-defined]
    before = len(model.requests)
    for _ in range(2):
        assert (await client.post("/translate", json={"text": "Servo motors."})).status_code == 200
    assert len(model.requests) - before == 1


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.",  # alg none
        "Bearer",
    ],
)
async def test_forged_tokens_are_refused(client: httpx.AsyncClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        await client.post("/chat", json={"query": "What is a topic?"}, headers=headers)
    ).status_code == 401
    assert (await client.get("/api/chat/sessions", headers=headers)).status_code == 401
    assert (await client.get("/api/auth/profile", headers=headers)).status_code == 401
