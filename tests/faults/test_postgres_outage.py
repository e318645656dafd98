"""PostgreSQL down, through the fault proxy: signed-in users' turns are still
answered, kept in the outbox across a restart, and written once, in order, when the
database is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL, make_url, text

from adapters.memory.index import InMemoryIndex
from adapters.outbox import OutboxConversationStore, PresetIds
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema
from adapters.system import SystemClock, UuidGenerator
from faults.proxy import FaultProxy
from postgres import fresh_database
from rag_core.answering import Answerer
from rag_core.chat import ChatService
from rag_core.lexical import LexicalEncoder
from rag_core.retrieval import Retriever
from service_process import clean_env, free_port, running_service

pytestmark = pytest.mark.postgres

TIMEOUT = 0.75  # the outbox's deadline for one database call
TURN_BOUND = 4 * TIMEOUT  # a turn makes at most three database calls, plus slack


@pytest.fixture
def database() -> Iterator[URL]:
    with fresh_database() as url:
        engine = create_engine_for(url)
        prepare_schema(engine, dependency="postgres")
        engine.dispose()
        yield make_url(url)


@pytest.fixture
def proxy(database: URL) -> Iterator[FaultProxy]:
    with FaultProxy(database.host or "127.0.0.1", database.port or 5432) as started:
        yield started


class Process:
    """What one process of the service holds: an engine through the proxy, the SQL
    store behind the outbox, and the chat use case on the outbox's chat view."""

    def __init__(self, url: URL, outbox_path: Path) -> None:
        self.engine = create_engine_for(
            url.render_as_string(hide_password=False),
            connect_timeout=1,
            statement_timeout_ms=1000,
            pool_size=2,
        )
        ids = PresetIds(UuidGenerator())
        store = SqlConversationStore(self.engine, ids=ids, dependency="postgres")
        self.outbox = OutboxConversationStore(
            store, outbox_path, dependency="postgres", session_ids=ids, timeout=TIMEOUT
        )
        answerer = Answerer(Retriever(InMemoryIndex(), LexicalEncoder()))
        self.chat = ChatService(answerer, self.outbox.chat_view(), SystemClock(), UuidGenerator())

    async def ask(self, question: str, user_id: str, session_id: str | None = None) -> str:
        started = time.monotonic()
        async with asyncio.timeout(TURN_BOUND):
            turn = await self.chat.ask(question, user_id=user_id, session_id=session_id)
        assert turn.answer.text
        assert turn.session_id is not None
        assert time.monotonic() - started < TURN_BOUND
        return turn.session_id

    async def stop(self) -> None:
        await self.outbox.close()
        await asyncio.to_thread(self.engine.dispose)


def stored_turns(url: URL) -> dict[str, list[tuple[str, str]]]:
    """Every stored message straight from PostgreSQL: (role, content) per session,
    in the order the database received them."""
    engine = create_engine_for(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT session_id, role, content FROM chat_messages ORDER BY seq")
            ).all()
            sessions = connection.execute(text("SELECT id, user_id FROM chat_sessions")).all()
            owners: dict[str, str] = {row.id: row.user_id for row in sessions}
    finally:
        engine.dispose()
    turns: dict[str, list[tuple[str, str]]] = {}
    for session_id, role, content in rows:
        turns.setdefault(f"{owners[session_id]}:{session_id}", []).append((role, content))
    return turns


def questions_and_answers(questions: list[str]) -> list[str]:
    return [role for _ in questions for role in ("user", "assistant")]


async def test_turns_survive_an_outage_and_a_restart(
    database: URL, proxy: FaultProxy, tmp_path: Path
) -> None:
    through_proxy = database.set(host=proxy.host, port=proxy.port)
    outbox_path = tmp_path / "data" / "outbox.db"
    first = Process(through_proxy, outbox_path)
    asked: dict[str, list[str]] = {}

    async def ask(process: Process, user: str, question: str, session: str | None = None) -> str:
        session_id = await process.ask(question, user, session)
        asked.setdefault(f"{user}:{session_id}", []).append(question)
        return session_id

    alice = await ask(first, "alice", "What is a robot?")
    await ask(first, "alice", "What is a joint?", alice)
    bob = await ask(first, "bob", "What is a link?")
    assert first.outbox.pending() == 0

    await asyncio.to_thread(proxy.blackhole)  # pooled connections hang, new ones too
    await ask(first, "alice", "What is a gripper?", alice)
    assert await ask(first, "bob", "And an actuator?") == bob  # his known latest session
    carol = await ask(first, "carol", "Who made the first robot?")  # created in the outbox

    await asyncio.to_thread(proxy.refuse)
    await ask(first, "alice", "What is torque?", alice)
    await ask(first, "carol", "When?", carol)
    pending = first.outbox.pending()
    assert pending == 6  # 5 turns and carol's session

    await first.stop()  # a restart during the outage
    second = Process(through_proxy, outbox_path)
    assert second.outbox.pending() == pending
    await ask(second, "alice", "What is a servo?", alice)
    await ask(second, "carol", "Where?", carol)

    await asyncio.to_thread(proxy.pass_through)
    async with asyncio.timeout(10):
        assert await second.outbox.flush() == pending + 2
    assert second.outbox.pending() == 0
    await ask(second, "bob", "Is it over?", bob)  # straight to the database again
    assert second.outbox.pending() == 0
    await second.stop()

    stored = await asyncio.to_thread(stored_turns, database)
    assert set(stored) == set(asked)
    for key, questions in asked.items():
        assert [role for role, _ in stored[key]] == questions_and_answers(questions), key
        assert [content for role, content in stored[key] if role == "user"] == questions, key


def test_the_service_starts_while_postgres_is_down_and_prepares_the_schema_when_it_is_back(
    tmp_path: Path,
) -> None:
    with fresh_database() as url:  # empty: no tables yet
        parsed = make_url(url)
        with FaultProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            proxy.refuse()
            through = parsed.set(host=proxy.host, port=proxy.port)
            env = clean_env(
                PORT=str(free_port()),
                DATA_DIR=str(tmp_path / "data"),
                DATABASE_URL=through.render_as_string(hide_password=False),
            )
            account = {"email": "back@example.com", "name": "B", "password": "long-password-1"}
            with running_service(env, tmp_path) as base:  # ready although the database is down
                health = httpx.get(f"{base}/health", timeout=10).json()
                assert health["components"]["database"]["status"] == "fail"
                answer = httpx.post(f"{base}/chat", json={"query": "hello"}, timeout=10)
                assert answer.status_code == 200
                refused = httpx.post(f"{base}/api/auth/sign-up", json=account, timeout=10)
                assert refused.status_code == 503

                proxy.pass_through()
                signed_up = httpx.post(f"{base}/api/auth/sign-up", json=account, timeout=10)
                assert signed_up.status_code == 200, signed_up.text
                token = signed_up.json()["session"]["accessToken"]
                sessions = httpx.get(
                    f"{base}/api/chat/sessions",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                assert sessions.status_code == 200
