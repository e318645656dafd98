"""What FakeOpenAI answers: deterministic replies and vectors."""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
import uuid
from typing import Any

WORD = re.compile(r"\s*\S+\s*|\s+")  # a word with its whitespace: tokens concatenate back
_PASSAGE_ONE = re.compile(r"^\[1\][ \t]*(.*?)(?=^\[2\]|\Z)", re.DOTALL | re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
NO_PASSAGE_REPLY = "I could not find this in the documentation."


def cite_first_passage(messages: list[dict[str, Any]]) -> str:
    """The default reply: the first sentence of passage ``[1]`` in the prompt, then " [1]".

    Passage ``[1]`` is the text from a line starting with ``[1]`` to the line starting
    with ``[2]``. When it spans several lines the first is its label (as in
    ``rag_core.prompting``: ``[1] Title > Heading (/route)`` then the text) and is
    skipped. Without a passage ``[1]``, the reply says it found nothing.
    """
    for message in messages:
        found = _PASSAGE_ONE.search(content_of(message))
        if found:
            label, _, text = found.group(1).strip().partition("\n")
            passage = " ".join((text if text.strip() else label).split())
            return f"{_SENTENCE_END.split(passage, maxsplit=1)[0]} [1]"
    return NO_PASSAGE_REPLY


def content_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def fake_vector(model: str, text: str, dimension: int) -> list[float]:
    raw = hashlib.shake_256(f"{model}\0{text}".encode()).digest(4 * dimension)
    values = [n / 2**31 - 1.0 for n in struct.unpack(f"<{dimension}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def chat_usage(messages: list[dict[str, Any]], tokens: list[str]) -> dict[str, int]:
    """A completion's usage, counted in words: the prompt's and the reply's."""
    prompt = sum(len(content_of(m).split()) for m in messages)
    completion = len("".join(tokens).split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_head(model: str) -> dict[str, Any]:
    """The members every completion and chunk of one answer share."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }
