"""The plain-dict form of the conversation values: the one codec of a
:class:`Citation`, a :class:`Message` and a :class:`Conversation`.

The dicts hold only JSON types (datetimes as ISO 8601 text, tuples as lists), so
``json.dumps`` writes them as they are. The SQL store keeps a message's citations in
this form in its JSON column, the outbox file keeps whole messages and sessions in it,
and the history's views (:func:`rag_core.history.message_view`, the export, the HTTP
routes) are built on it.

``*_from_dict(*_to_dict(x)) == x`` for every value: datetimes keep their offset and
microseconds, floats their value, tuples come back as tuples. The readers take the
datetimes as ISO text or as ``datetime`` objects (as a SQL column reads them) and
ignore keys they do not know, so every row and record written since these values
were first stored still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rag_core.answers import Citation
from rag_core.conversations import Conversation, Message, Role


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    return {
        "number": citation.number,
        "title": citation.title,
        "route": citation.route,
        "heading_path": list(citation.heading_path),
        "snippet": citation.snippet,
        "score": citation.score,
        "document_id": citation.document_id,
        "chunk_id": citation.chunk_id,
    }


def citation_from_dict(values: Mapping[str, Any]) -> Citation:
    return Citation(
        number=values["number"],
        title=values["title"],
        route=values["route"],
        heading_path=tuple(values["heading_path"]),
        snippet=values["snippet"],
        score=values["score"],
        chunk_id=values["chunk_id"],
        document_id=values["document_id"],
    )


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "session_id": message.session_id,
        "role": message.role.value,
        "content": message.content,
        "selected_text": message.selected_text,
        "created_at": message.created_at.isoformat(),
        "sources": [citation_to_dict(citation) for citation in message.sources],
    }


def message_from_dict(values: Mapping[str, Any]) -> Message:
    return Message(
        id=values["id"],
        session_id=values["session_id"],
        role=Role(values["role"]),
        content=values["content"],
        created_at=_moment(values["created_at"]),
        selected_text=values["selected_text"],
        sources=tuple(citation_from_dict(item) for item in values["sources"]),
    )


def conversation_to_dict(session: Conversation) -> dict[str, Any]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "title": session.title,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "is_active": session.is_active,
        "message_count": session.message_count,
    }


def conversation_from_dict(values: Mapping[str, Any]) -> Conversation:
    return Conversation(
        id=values["id"],
        user_id=values["user_id"],
        title=values["title"],
        created_at=_moment(values["created_at"]),
        updated_at=_moment(values["updated_at"]),
        is_active=bool(values["is_active"]),
        message_count=int(values["message_count"]),
    )


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
