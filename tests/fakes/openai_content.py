"""What FakeOpenAI answers: deterministic replies and vectors, and the JSON of its
answers (shared with bench/fake_loop.py, which serves the same on one event loop)."""

from __future__ import annotations

import base64
import hashlib
import json
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


def model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "fake"}


def embedding_of(model: str, text: str, dimension: int, *, as_base64: bool) -> object:
    """``text``'s vector as an embeddings answer carries it: a list of floats, or
    base64 of little-endian float32 (``encoding_format: base64``)."""
    vector = fake_vector(model, text, dimension)
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{dimension}f", *vector)).decode()


def embeddings_answer(model: str, inputs: list[str], embeddings: list[object]) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embeddings)]
    tokens = sum(len(t.split()) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def completion_answer(
    head: dict[str, Any], text: str, finish: str, usage: dict[str, int]
) -> dict[str, Any]:
    """A non-streamed chat completion."""
    message = {"role": "assistant", "content": text, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {**head, "object": "chat.completion", "choices": [choice], "usage": usage}


def delta_choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def chunk_json(
    head: dict[str, Any], choices: list[dict[str, Any]], *, include_usage: bool, **extra: Any
) -> str:
    """One streamed chunk's JSON; with usage asked for, every chunk carries ``usage``
    (null until the last), as OpenAI's do."""
    if include_usage:
        extra.setdefault("usage", None)
    return json.dumps({**head, "object": "chat.completion.chunk", "choices": choices, **extra})


def error_answer(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body, its ``type`` by status."""
    kind = {429: "requests", 401: "invalid_request_error"}.get(status)
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
