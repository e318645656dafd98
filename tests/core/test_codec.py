"""The one codec of the conversation values (rag_core.codec) and the history's views
built on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from rag_core.answers import Citation
from rag_core.codec import (
    citation_from_dict,
    citation_to_dict,
    conversation_from_dict,
    conversation_to_dict,
    message_from_dict,
    message_to_dict,
)
from rag_core.conversations import Conversation, Message, Role
from rag_core.history import citation_view, message_view

CITED = Citation(1, "Nodes", "/docs/nodes", ("Week 3", "Topics"), "A bus.", 0.1 + 0.2, "c", "d")
SELECTED = Citation(2, "Selected text", "", (), "words", 1.0, None, None)
AT = datetime(2025, 6, 1, 14, 30, 0, 123456, timezone(timedelta(hours=-3, minutes=-30)))
MESSAGE = Message(
    "m1", "s1", Role.ASSISTANT, "«θ» \ud800 🤖 [1]", AT, "sel\nected", (CITED, SELECTED)
)


def test_values_round_trip_exactly_through_json() -> None:
    assert message_from_dict(json.loads(json.dumps(message_to_dict(MESSAGE)))) == MESSAGE
    session = Conversation("s1", "alice", "t", AT, AT + timedelta(seconds=1), False, 3)
    assert conversation_from_dict(json.loads(json.dumps(conversation_to_dict(session)))) == session
    assert citation_from_dict(json.loads(json.dumps(citation_to_dict(CITED)))) == CITED


def test_datetimes_read_as_objects_too() -> None:
    # As a SQL column hands them over.
    values = {**message_to_dict(MESSAGE), "created_at": AT.astimezone(UTC)}
    assert message_from_dict(values) == MESSAGE


def test_the_views_link_pages_and_name_sources_as_text() -> None:
    assert citation_view(CITED, "https://book.example/") == {
        "number": 1,
        "title": "Nodes",
        "url": "https://book.example/docs/nodes",
        "heading_path": ["Week 3", "Topics"],
        "snippet": "A bus.",
        "score": 0.1 + 0.2,
        "document_id": "d",
        "chunk_id": "c",
    }
    view = message_view(MESSAGE)
    assert view["sources"] == ["[1] Nodes — /docs/nodes", "[2] Selected text"]
    assert [c["url"] for c in view["citations"]] == ["/docs/nodes", ""]
    assert view["created_at"] == AT.isoformat()
