"""Chat sessions and their messages."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from rag_core.answers import Citation
from rag_core.errors import InvalidInput


class Role(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@attrs.frozen(slots=True)
class Conversation:
    """A chat session owned by one user."""

    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    is_active: bool = True
    message_count: int = 0


@attrs.frozen(slots=True)
class Message:
    """One turn of a conversation. ``sources`` are the citations of an assistant turn."""

    id: str
    session_id: str
    role: Role
    content: str
    created_at: datetime
    selected_text: str = ""
    sources: tuple[Citation, ...] = ()


def check_appended(session_id: str, messages: Iterable[Message]) -> None:
    """What every ``ConversationStore.append`` refuses before it writes anything:
    raises InvalidInput for a message of another session than ``session_id`` or with a
    naive ``created_at``."""
    for message in messages:
        if message.session_id != session_id:
            raise InvalidInput("a message belongs to another session than the target")
        if message.created_at.utcoffset() is None:
            raise InvalidInput("message created_at must be timezone-aware")
