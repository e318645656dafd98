"""The outbox file's JSON text of the conversation values (their dict form is
:mod:`rag_core.codec`).

``decode_*(encode_*(x)) == x`` for every value, strings keeping every code point:
the JSON is ASCII-escaped, so a lone surrogate is written as ``\\udXXX`` rather than
failing to encode.
"""

from __future__ import annotations

import json

from rag_core.codec import (
    conversation_from_dict,
    conversation_to_dict,
    message_from_dict,
    message_to_dict,
)
from rag_core.conversations import Conversation, Message


def encode_messages(messages: list[Message]) -> str:
    return json.dumps([message_to_dict(m) for m in messages])


def decode_messages(text: str) -> list[Message]:
    return [message_from_dict(item) for item in json.loads(text)]


def encode_session(session: Conversation) -> str:
    return json.dumps(conversation_to_dict(session))


def decode_session(text: str) -> Conversation:
    return conversation_from_dict(json.loads(text))
