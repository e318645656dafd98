"""The production adapters end to end: the real service with OpenAI pointed at the
fake OpenAI-compatible server, Qdrant local mode, and the real PostgreSQL."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes.openai_server import FakeOpenAI
from postgres import fresh_database
from service_process import clean_env, cli, free_port, running_service

FIXTURES = Path(__file__).parent / "fixtures" / "docs"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(dimension=64) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeOpenAI) -> Iterator[dict[str, str]]:
    shutil.copytree(FIXTURES, tmp_path / "docs")
    with fresh_database() as database_url:
        yield clean_env(
            PORT=str(free_port()),
            DATA_DIR=str(tmp_path / "data"),
            OPENAI_API_KEY="sk-test-key",
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_EMBEDDING_DIMENSION="64",
            NEON_API_KEY=database_url.replace("postgresql://", "postgres://", 1),
            BETTER_AUTH_SECRET="x" * 40,
        )


def test_generated_cited_answers_hybrid_retrieval_and_durable_history(
    env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    with running_service(env, tmp_path, "--ingest", "docs") as base:
        ingest_requests = fake.requests["embeddings"]
        assert 1 <= ingest_requests < 5  # batched: every chunk of the folder in a few requests

        answer = httpx.post(
            f"{base}/chat", json={"query": "How do nodes talk to each other?"}, timeout=10
        )
        body = answer.json()
        assert body["mode"] == "generated" and body["retrieval"] == "hybrid", body
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", body["response"])}
        assert numbers and numbers <= {s["number"] for s in body["sources"]}

        again = cli("ingest", "docs", env=env, cwd=tmp_path)
        assert "embedding calls: 0" in again.stdout, again.stdout + again.stderr
        assert fake.requests["embeddings"] == ingest_requests + 1  # only the question above

        account = {"email": "reader@example.com", "name": "R", "password": "long enough pw"}
        token = httpx.post(f"{base}/api/auth/sign-up", json=account, timeout=10).json()["session"][
            "accessToken"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        first = httpx.post(
            f"{base}/chat", json={"query": "What is a topic?"}, headers=auth, timeout=10
        )
        session_id = first.json()["session_id"]

    # A freshly started second instance reads the turn back from PostgreSQL as history.
    with running_service(env, tmp_path) as base:
        follow = httpx.post(
            f"{base}/chat",
            json={"query": "Tell me more about that", "session_id": session_id},
            headers=auth,
            timeout=10,
        )
        assert follow.status_code == 200, follow.text
        answering_prompt = fake.bodies[-1][1]["messages"]
        assert any(m["content"] == "What is a topic?" for m in answering_prompt[1:-1])
        stored = httpx.get(
            f"{base}/api/chat/sessions/{session_id}", headers=auth, timeout=10
        ).json()
        assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2


def test_an_unchanged_re_ingest_neither_imports_nor_calls_openai(
    env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    first = cli("ingest", "docs", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    calls = fake.requests["embeddings"]
    assert calls >= 1

    unreachable = {**env, "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    again = cli("ingest", "docs", env={**unreachable, "PYTHONPROFILEIMPORTTIME": "1"}, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "embedding calls: 0" in again.stdout
    assert not re.search(r"\|\s+openai$", again.stderr, re.MULTILINE)  # never imported

    page = next((tmp_path / "docs").rglob("*.md"))
    page.write_text(page.read_text() + "\n\nA new paragraph about actuators.\n")
    changed = cli("ingest", "docs", env=env, cwd=tmp_path)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert fake.requests["embeddings"] > calls  # the embedder is built when it is needed
