"""Answer ids, feedback and the author's insights, through the full app (in-memory
adapters)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.settings import Settings
from entrypoints.container import Container, in_memory_container
from entrypoints.http.app import create_app
from rag_core.markdown import parse_document

BOOK = {
    "docs/topics.md": "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n",
    "docs/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines.\n",
}
ADMIN = {"Authorization": "Bearer admin-key-for-tests"}


async def started(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    values: dict[str, Any] = {"admin_api_key": "admin-key-for-tests", "rate_limit_enabled": False}
    settings = Settings(_env_file=None, **{**values, **overrides})
    container = await in_memory_container(settings, password_cost=4)
    await container.ingestor.ingest([parse_document(p, t) for p, t in BOOK.items()])
    app = create_app(settings, container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c, container


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c, _ in started():
        yield c


async def ask(client: httpx.AsyncClient, question: str, **headers: str) -> dict[str, Any]:
    response = await client.post("/chat", json={"query": question}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_answer_has_an_id_and_a_stored_one_is_its_message(
    client: httpx.AsyncClient,
) -> None:
    first, second = await ask(client, "What is a topic?"), await ask(client, "What is a topic?")
    assert first["answer_id"] and first["answer_id"] != second["answer_id"]
    streamed = await client.post("/chat/stream", json={"query": "What is a topic?"})
    finals = [
        json.loads(line[5:])
        for line in streamed.text.splitlines()
        if line.startswith("data:") and '"answer_id"' in line
    ]
    assert finals and finals[-1]["answer_id"]
    messages = [{"role": "user", "content": "What is a topic?"}]
    v1 = (await client.post("/v1/chat/completions", json={"messages": messages})).json()
    assert v1["answer_id"]
    up = {"email": "r@example.com", "name": "R", "password": "correct horse battery"}
    token = (await client.post("/api/auth/sign-up", json=up)).json()["session"]["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    answer = await ask(client, "What is a topic?", **auth)
    session = (await client.get(f"/api/chat/sessions/{answer['session_id']}", headers=auth)).json()
    assert session["messages"][1]["id"] == answer["answer_id"]


async def test_feedback_round_trip_one_vote_per_reader(client: httpx.AsyncClient) -> None:
    answer = await ask(client, "What is a topic?")
    vote = {"answer_id": answer["answer_id"], "rating": "down", "comment": "not what I asked"}
    assert (await client.post("/feedback", json=vote)).json() == {"recorded": True}
    assert (await client.post("/feedback", json={**vote, "rating": "up"})).status_code == 200
    report = (await client.get("/admin/insights", headers=ADMIN)).json()
    assert report["votes"] == {"up": 1, "down": 0}  # the same reader changed their vote
    assert report["most_down_voted"] == []
    await client.post("/feedback", json=vote)
    [disliked] = (await client.get("/admin/insights", headers=ADMIN)).json()["most_down_voted"]
    assert disliked["question"] == "What is a topic?"
    assert disliked["comments"] == ["not what I asked"]


@pytest.mark.parametrize(
    ("vote", "status"),
    [
        ({"answer_id": "no-such-answer", "rating": "up"}, 404),
        ({"answer_id": "x", "rating": "meh"}, 422),
        ({"answer_id": "", "rating": "up"}, 422),
        ({"answer_id": "x", "rating": "up", "comment": "c" * 1001}, 422),
        ({"answer_id": "x" * 65, "rating": "up"}, 422),
    ],
)
async def test_bad_feedback_is_a_4xx_with_a_reason(
    client: httpx.AsyncClient, vote: dict[str, str], status: int
) -> None:
    response = await client.post("/feedback", json=vote)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


async def test_insights_need_the_admin_key_and_report_gaps(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/insights")).status_code == 401
    for question in [
        "How long should I boil fresh pasta?",
        "What is the cooking time for fresh pasta?",
        "What is a topic?",
    ]:
        await ask(client, question)
    report = (await client.get("/admin/insights", headers=ADMIN, params={"since": "7d"})).json()
    assert (report["questions"], report["uncertain"]) == (3, 2)
    [gap] = report["coverage_gaps"]
    assert gap["size"] == 2 and "pasta" in gap["terms"]
    assert report["most_cited_pages"] == [{"page": "/docs/topics", "answers": 1}]
    assert report["pages_never_cited"] == ["/docs/gazebo"]
    assert [d["questions"] for d in report["per_day"]] == [3]
    bad = await client.get("/admin/insights", headers=ADMIN, params={"since": "soon"})
    assert bad.status_code == 422


async def test_with_identities_off_no_user_id_reaches_the_log() -> None:
    async for client, container in started():
        up = {"email": "r@example.com", "name": "R", "password": "correct horse battery"}
        token = (await client.post("/api/auth/sign-up", json=up)).json()["session"]["accessToken"]
        await ask(client, "What is a topic?", Authorization=f"Bearer {token}")
        assert container.insights is not None
        await container.insights.settle()
        [entry] = await container.insights._log.answers(container.clock.now().replace(year=2000))
        assert entry.user_id is None


async def test_with_the_question_log_off_nothing_is_logged_and_feedback_is_off() -> None:
    async for client, container in started(question_log=False):
        answer = await ask(client, "What is a topic?")
        assert container.insights is None
        vote = {"answer_id": answer["answer_id"], "rating": "up"}
        assert (await client.post("/feedback", json=vote)).status_code == 404


async def test_metrics_count_answers_by_uncertainty_and_votes(client: httpx.AsyncClient) -> None:
    answer = await ask(client, "What is a topic?")
    await ask(client, "How long should I boil fresh pasta?")
    await client.post("/feedback", json={"answer_id": answer["answer_id"], "rating": "up"})
    text = (await client.get("/metrics")).text
    assert 'rag_answers_total{mode="extractive",uncertain="false"} 1.0' in text
    assert 'rag_answers_total{mode="extractive",uncertain="true"} 1.0' in text
    assert 'rag_feedback_total{rating="up"} 1.0' in text


async def test_the_insights_page_is_served_with_its_own_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin")
    assert response.status_code == 200 and "Insights for the author" in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "connect-src 'self'" in policy
