"""Exact JSON round trips of the conversation values kept in the outbox file.

``decode_*(encode_*(x)) == x`` for every value: datetimes keep their offset and
microseconds, floats their exact value (``repr``), strings every code point (lone
surrogates included: the JSON is ASCII-escaped), tuples come back as tuples.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs

from rag_core.answers import Citation
from rag_core.conversations import Conversation, Message, Role


def encode_messages(messages: list[Message]) -> str:
    return json.dumps([_message_dict(m) for m in messages])


def decode_messages(text: str) -> list[Message]:
    return [_message(item) for item in json.loads(text)]


def encode_session(session: Conversation) -> str:
    values = attrs.asdict(session)
    values["created_at"] = session.created_at.isoformat()
    values["updated_at"] = session.updated_at.isoformat()
    return json.dumps(values)


def decode_session(text: str) -> Conversation:
    values = json.loads(text)
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    values["updated_at"] = datetime.fromisoformat(values["updated_at"])
    return Conversation(**values)


def _message_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "session_id": message.session_id,
        "role": message.role.value,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "selected_text": message.selected_text,
        "sources": [attrs.asdict(citation) for citation in message.sources],
    }


def _message(item: dict[str, Any]) -> Message:
    return Message(
        id=item["id"],
        session_id=item["session_id"],
        role=Role(item["role"]),
        content=item["content"],
        created_at=datetime.fromisoformat(item["created_at"]),
        selected_text=item["selected_text"],
        sources=tuple(
            Citation(**{**source, "heading_path": tuple(source["heading_path"])})
            for source in item["sources"]
        ),
    )
