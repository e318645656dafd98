"""Chat sessions and their messages."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from rag_core.answers import Citation


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
