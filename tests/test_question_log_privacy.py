"""With identities off (the default), the question log's tables in the embedded
database hold no user id, email or address; the purge removes what is past retention."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from adapters.settings import Settings
from entrypoints.bootstrap import build_container
from entrypoints.http.app import create_app
from rag_core.markdown import parse_document
from rag_core.testing import FakeClock

EMAIL = "reader.private@example.com"


def settings(data: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data,
        "openai_api_key": None,
        "embeddings": "none",
        "rate_limit_enabled": False,
    }
    return Settings(_env_file=None, **{**values, **changes})  # type: ignore[arg-type]


def rows(data: Path) -> list[str]:
    with sqlite3.connect(data / "rag.db") as db:
        found = []
        for table in ("logged_answers", "answer_votes"):
            found += [" ".join(map(str, row)) for row in db.execute(f"SELECT * FROM {table}")]
        return found


async def test_the_log_holds_no_identity_and_is_purged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    container = await build_container(settings(data))
    try:
        doc = "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n"
        await container.ingest([parse_document("docs/topics.md", doc)])
        app = create_app(container.settings, container)
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 4321))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            up = {"email": EMAIL, "name": "Private Reader", "password": "correct horse battery"}
            session = (await client.post("/api/auth/sign-up", json=up)).json()
            auth = {"Authorization": f"Bearer {session['session']['accessToken']}"}
            user_id = session["user"]["id"]
            signed = await client.post("/chat", json={"query": "What is a topic?"}, headers=auth)
            anonymous = await client.post("/chat", json={"query": "What is a bus?"})
            for answer in (signed.json(), anonymous.json()):
                vote = {"answer_id": answer["answer_id"], "rating": "down", "comment": "meh"}
                assert (await client.post("/feedback", json=vote)).status_code == 200
            vote = {"answer_id": signed.json()["answer_id"], "rating": "up"}
            assert (await client.post("/feedback", json=vote, headers=auth)).status_code == 200
        stored = rows(data)
        assert len(stored) == 5  # 2 answers, 3 votes
        for row in stored:
            for secret in (user_id, EMAIL, "198.51.100.23", "Private Reader"):
                assert secret not in row
        assert container.insights is not None
        insights = container.insights
        assert await insights.purge() == 0  # nothing is past the 90 days
        insights.retention = timedelta(days=1)
        container.insights._clock = FakeClock(datetime.now(UTC) + timedelta(days=2))
        assert await insights.purge() == 2
        assert rows(data) == []  # the votes went with their answers
    finally:
        await container.aclose()
