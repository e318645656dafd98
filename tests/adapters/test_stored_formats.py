"""Rows and records written before the codec was shared (rag_core.codec) still read:
the SQL ``chat_messages.sources`` JSON column and the outbox file, in the exact text
the earlier code wrote (copied from a database and an outbox file it made)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
from sqlalchemy import create_engine, text

from adapters.outbox.journal import Journal, Kind
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import prepare_schema
from rag_core.answers import Citation
from rag_core.conversations import Conversation, Message, Role

SESSION_ID = "ce3da176-21f3-4395-ac78-5dcd0c0d1b6e"
CITED = Citation(
    1,
    "Nodes — «θ» 🤖",
    "/docs/week3/ros2-nodes-topics",
    ("Week 3", "Topics"),
    "A topic is a named bus.",
    0.8125,
    "c-1",
    "d-1",
)
SELECTED = Citation(2, "Selected text", "", (), "the selection", 1.0, None, None)
ASKED = datetime(2025, 6, 1, 14, 30, 0, 123456, timezone(timedelta(hours=2)))
MESSAGES = [
    Message("m1", SESSION_ID, Role.USER, "What is a topic?", ASKED, selected_text="the selection"),
    Message("m2", SESSION_ID, Role.ASSISTANT, "A bus [1] [2].", ASKED, sources=(CITED, SELECTED)),
]
CREATED = datetime(2026, 12, 2, 15, 5, 39, 205871, UTC)
SESSION = Conversation(SESSION_ID, "alice", "Kinematics", CREATED, CREATED)

# --- SQL: the rows as the earlier SqlConversationStore wrote them on SQLite ----------

SQL_SESSION = (
    SESSION_ID,
    "alice",
    "Kinematics",
    "2026-12-02 15:05:39.205871",
    "2026-12-02 15:05:39.212171",
    1,
)
SQL_SOURCES = (
    '[{"number": 1, "title": "Nodes — «θ» 🤖", "route": "/docs/week3/ros2-nodes-topics", '
    '"heading_path": ["Week 3", "Topics"], "snippet": "A topic is a named bus.", '
    '"score": 0.8125, "chunk_id": "c-1", "document_id": "d-1"}, {"number": 2, "title": '
    '"Selected text", "route": "", "heading_path": [], "snippet": "the selection", '
    '"score": 1.0, "chunk_id": null, "document_id": null}]'
)
SQL_MESSAGES = [
    (
        1,
        "m1",
        SESSION_ID,
        "user",
        "What is a topic?",
        "the selection",
        "[]",
        "2025-06-01 12:30:00.123456",
    ),
    (
        2,
        "m2",
        SESSION_ID,
        "assistant",
        "A bus [1] [2].",
        "",
        SQL_SOURCES,
        "2025-06-01 12:30:00.123456",
    ),
]


async def test_sql_rows_written_by_the_earlier_store_still_read(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'chat.db'}")
    prepare_schema(engine)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO chat_sessions VALUES (:a, :b, :c, :d, :e, :f)"),
            dict(zip("abcdef", SQL_SESSION, strict=True)),
        )
        for row in SQL_MESSAGES:
            connection.execute(
                text("INSERT INTO chat_messages VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
                dict(zip("abcdefgh", row, strict=True)),
            )
    store = SqlConversationStore(engine)
    assert await store.messages(SESSION_ID) == MESSAGES
    session = await store.get_session(SESSION_ID)
    assert session is not None
    assert (session.user_id, session.title, session.created_at) == ("alice", "Kinematics", CREATED)
    assert session.message_count == 2
    engine.dispose()


async def test_sql_rows_written_now_read_with_the_earlier_decoding(tmp_path: Path) -> None:
    # A release behind (a rolling deploy) rebuilt citations as Citation(**item).
    engine = create_engine(f"sqlite:///{tmp_path / 'chat.db'}")
    prepare_schema(engine)
    store = SqlConversationStore(engine)
    session = await store.create_session("alice", "Kinematics")
    await store.append(session.id, [attrs.evolve(m, session_id=session.id) for m in MESSAGES])
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT sources FROM chat_messages ORDER BY seq")).scalars()
        decoded = [
            tuple(
                Citation(**{**item, "heading_path": tuple(item["heading_path"])})
                for item in json.loads(column)
            )
            for column in raw
        ]
    assert decoded == [(), (CITED, SELECTED)]
    engine.dispose()


# --- the outbox file: the records as the earlier outbox wrote them -------------------

OUTBOX_SESSION = (
    '{"id": "ce3da176-21f3-4395-ac78-5dcd0c0d1b6e", "user_id": "alice", "title": '
    '"Kinematics", "created_at": "2026-12-02T15:05:39.205871+00:00", "updated_at": '
    '"2026-12-02T15:05:39.205871+00:00", "is_active": true, "message_count": 0}'
)
OUTBOX_MESSAGES = (
    '[{"id": "m1", "session_id": "ce3da176-21f3-4395-ac78-5dcd0c0d1b6e", "role": "user", '
    '"content": "What is a topic?", "created_at": "2025-06-01T14:30:00.123456+02:00", '
    '"selected_text": "the selection", "sources": []}, {"id": "m2", "session_id": '
    '"ce3da176-21f3-4395-ac78-5dcd0c0d1b6e", "role": "assistant", "content": '
    '"A bus [1] [2].", "created_at": "2025-06-01T14:30:00.123456+02:00", '
    '"selected_text": "", "sources": [{"number": 1, "title": "Nodes \\u2014 '
    '\\u00ab\\u03b8\\u00bb \\ud83e\\udd16", "route": "/docs/week3/ros2-nodes-topics", '
    '"heading_path": ["Week 3", "Topics"], "snippet": "A topic is a named bus.", '
    '"score": 0.8125, "chunk_id": "c-1", "document_id": "d-1"}, {"number": 2, '
    '"title": "Selected text", "route": "", "heading_path": [], "snippet": '
    '"the selection", "score": 1.0, "chunk_id": null, "document_id": null}]}]'
)


def test_outbox_records_written_by_the_earlier_outbox_still_read(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    Journal(path).close()  # the file and its table, as the outbox makes them
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO outbox (kind, session_id, payload, session) VALUES (?, ?, ?, ?)",
            ("messages", SESSION_ID, OUTBOX_MESSAGES, OUTBOX_SESSION),
        )
        db.execute(
            "INSERT INTO outbox (kind, session_id, payload, session) VALUES (?, ?, ?, ?)",
            ("create", SESSION_ID, OUTBOX_SESSION, None),
        )
    db.close()
    journal = Journal(path)
    try:
        appended, created = journal.entries()
        assert (appended.kind, appended.messages, appended.session) == (
            Kind.MESSAGES,
            tuple(MESSAGES),
            SESSION,
        )
        assert (created.kind, created.session, created.messages) == (Kind.CREATE, SESSION, ())
        assert journal.batches_of(SESSION_ID) == [(appended.seq, MESSAGES)]  # seq as key
    finally:
        journal.close()
