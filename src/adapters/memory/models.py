"""In-memory Embedder and ChatModel: deterministic stand-ins for tests and for
projects that embed the core. No I/O; they pass the same contract as the OpenAI
adapters (tests/contract/model_contract.py)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import struct
from collections.abc import AsyncGenerator, Callable, Sequence

import attrs

from rag_core.ports import ChatMessage, Completion, Delta, Usage

Reply = Callable[[Sequence[ChatMessage]], str]
# A word with the whitespace around it, so the pieces concatenate to the reply.
_WORD = re.compile(r"\s*\S+\s*|\s+")


class HashEmbedder:
    """Implements :class:`rag_core.ports.Embedder` with hash-derived vectors.

    Identical texts get identical vectors, different texts different ones (not
    similar ones: similar texts are not close). Vectors are L2-normalised, of
    ``dimension`` floats, stable across processes and Python versions. ``calls``
    counts ``embed`` calls and ``texts`` the texts embedded. Never raises.
    """

    def __init__(self, dimension: int = 64, model: str = "hash-embedder") -> None:
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self._dimension = dimension
        self._model = model
        self.calls = 0
        self.texts = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls += 1
        self.texts += len(texts)
        return [hash_vector(text, self._dimension) for text in texts]


def hash_vector(text: str, dimension: int) -> tuple[float, ...]:
    """A unit vector derived from SHAKE-256 of the text."""
    raw = hashlib.shake_256(text.encode("utf-8")).digest(4 * dimension)
    values = [n / 2**31 - 1.0 for n in struct.unpack(f"<{dimension}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


@attrs.frozen(slots=True)
class ChatRequest:
    """What a ScriptedChatModel was asked."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int | None
    stream: bool


class ScriptedChatModel:
    """Implements :class:`rag_core.ports.ChatModel` with scripted replies.

    ``replies`` is either a sequence, answered in order (one more call than
    scripted raises RuntimeError: the test asked more than it meant to), or a
    function of the messages (which may raise, e.g. DependencyUnavailable, to
    script a failure). ``max_tokens`` keeps the first that many words. Usage
    counts words: prompt words across all messages, reply words. ``stream``
    yields one Delta per word (with its surrounding whitespace, so the deltas
    concatenate to ``complete``'s text), then ``Delta("", usage)``; closing it
    early is clean. Every call is recorded in ``requests``.
    """

    def __init__(self, replies: Sequence[str] | Reply) -> None:
        self._replies = replies if callable(replies) else list(replies)
        self._used = 0
        self.requests: list[ChatRequest] = []

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        words = self._reply(messages, max_tokens, stream=False)
        return Completion(text="".join(words), usage=_usage(messages, words))

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        words = self._reply(messages, max_tokens, stream=True)
        for word in words:
            yield Delta(word)
            await asyncio.sleep(0)  # a real stream suspends between deltas
        yield Delta("", _usage(messages, words))

    def _reply(
        self, messages: Sequence[ChatMessage], max_tokens: int | None, *, stream: bool
    ) -> list[str]:
        self.requests.append(ChatRequest(tuple(messages), max_tokens, stream))
        if callable(self._replies):
            reply = self._replies(messages)
        elif self._used < len(self._replies):
            reply = self._replies[self._used]
            self._used += 1
        else:
            raise RuntimeError(
                f"ScriptedChatModel has no reply left: all {len(self._replies)} were used"
            )
        words = _WORD.findall(reply)
        return words if max_tokens is None else words[: max(0, max_tokens)]


def _usage(messages: Sequence[ChatMessage], words: list[str]) -> Usage:
    prompt = sum(len(m.content.split()) for m in messages)
    return Usage(prompt_tokens=prompt, completion_tokens=len("".join(words).split()))
