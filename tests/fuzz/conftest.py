"""The app the fuzz tests hammer: the full FastAPI app on the in-memory container,
a scripted chat model (so chat and the transforms answer), a small ingested book,
an admin key, and one signed-up reader whose fresh bearer tokens the tests mint.

Every module gets its own app (module scope), so one module's fuzzing (e.g. a
sign-out, an ``/ingest`` with ``scope=""``) cannot change what another sees.

``postgres_fuzz_app`` is the production wiring instead (PostgreSQL through the
outbox, Qdrant in memory, no chat model): text the in-memory stores take as it is
(NUL, for one) is refused by PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.testclient import TestClient

from adapters.memory.models import ScriptedChatModel
from adapters.settings import Settings
from adapters.tokens import JwtAuthenticator
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from postgres import fresh_database  # tests/postgres.py
from rag_core.markdown import parse_document
from rag_core.ports import ChatMessage

ADMIN_KEY = "admin-key-for-fuzz-tests"
AUTH_SECRET = "fuzz-tests-token-secret-at-least-32-bytes-long"
READER_EMAIL = "reader@example.com"
READER_PASSWORD = "correct horse battery"
BOOK = {
    "docs/week3/ros2-nodes-topics.md": "# Nodes and Topics\n\n## Topics\n\n"
    "A topic is a named bus over which nodes exchange messages.\n",
    "docs/week6/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
}


def reply(messages: Sequence[ChatMessage]) -> str:
    """A cited answer for chat, an echo for the transforms and query rewrites."""
    system = messages[0].content if messages else ""
    if "Sources:" in system:
        return "A topic is a named bus [1]."
    return "ok: " + (messages[-1].content if messages else "")


@attrs.frozen
class FuzzApp:
    app: FastAPI
    settings: Settings
    model: ScriptedChatModel | None
    user_id: str
    authenticator: JwtAuthenticator

    def token(self) -> str:
        """A fresh, valid bearer token of the reader (a fuzzed sign-out only
        revokes the token it was sent with, so each request gets its own)."""
        return self.authenticator.issue(self.user_id).value

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}


def fuzz_settings(**overrides: Any) -> Settings:
    """Rate limits off: hundreds of requests from one client address are the point
    here, and a 429 would stand in for the answer under test (tests/http covers the
    limits; a 429 that does come back must still be JSON with Retry-After)."""
    return Settings(
        _env_file=None,
        admin_api_key=SecretStr(ADMIN_KEY),
        better_auth_secret=SecretStr(AUTH_SECRET),
        cors_allowed_origins="",
        docs_path="",
        rate_limit_enabled=False,
        **overrides,
    )


def make_fuzz_app() -> FuzzApp:
    """Build the container in a throw-away event loop (the in-memory adapters
    hold no loop-bound state); the caller's ASGI client runs the app's lifespan
    and every request on its own loop."""
    settings = fuzz_settings()
    model = ScriptedChatModel(reply)

    async def build() -> tuple[FastAPI, str]:
        container = await in_memory_container(settings, chat_model=model, password_cost=4)
        await container.ingestor.ingest([parse_document(p, t) for p, t in BOOK.items()])
        signed = await container.accounts.sign_up(READER_EMAIL, "Reader", READER_PASSWORD)
        return create_app(settings, container), signed.user.id

    app, user_id = asyncio.run(build())
    authenticator = JwtAuthenticator(AUTH_SECRET, issuer=settings.better_auth_url)
    return FuzzApp(app, settings, model, user_id, authenticator)


@pytest.fixture(scope="module")
def fuzz_app() -> FuzzApp:
    return make_fuzz_app()


@pytest.fixture(scope="module")
def postgres_fuzz_app(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FuzzApp, TestClient]]:
    """The app as production builds it, on a fresh PostgreSQL database, with the
    book ingested and the reader signed up over HTTP; its client runs one lifespan."""
    with fresh_database() as url:
        settings = fuzz_settings(
            database_url=url,
            qdrant_url=":memory:",
            data_dir=Path(tmp_path_factory.mktemp("postgres-fuzz")),
        )
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            documents = [{"path": p, "text": t} for p, t in BOOK.items()]
            ingested = client.post(
                "/ingest",
                json={"documents": documents},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert ingested.status_code == 200, ingested.text
            body = {"email": READER_EMAIL, "name": "Reader", "password": READER_PASSWORD}
            signed = client.post("/api/auth/sign-up", json=body)
            assert signed.status_code == 200, signed.text
            authenticator = JwtAuthenticator(AUTH_SECRET, issuer=settings.better_auth_url)
            fuzz = FuzzApp(app, settings, None, signed.json()["user"]["id"], authenticator)
            yield fuzz, client
