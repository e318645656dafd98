"""Port implementations that put a :class:`~adapters.resilience.breaker.Breaker` in
front of every outside call of another implementation of the same port.

Each class wraps one port, method by method. ``probe()`` goes through
:meth:`Breaker.probe`: an open circuit never refuses it, and after the recovery timeout
a successful probe is the trial call that closes the circuit. ``close()`` is never
guarded: resources are released whatever the circuit's state.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence

from adapters.resilience.breaker import Breaker
from rag_core.answers import Passage
from rag_core.conversations import Conversation, Message
from rag_core.documents import Chunk, IndexedChunk
from rag_core.ports import (
    ChatMessage,
    ChatModel,
    Completion,
    ConversationStore,
    Delta,
    Embedder,
    SearchQuery,
    VectorIndex,
)


class GuardedIndex:
    """A :class:`~rag_core.ports.VectorIndex` whose calls go through ``breaker``."""

    def __init__(self, inner: VectorIndex, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def prepare(self, dense_dimension: int | None) -> None:
        await self._breaker.call(lambda: self._inner.prepare(dense_dimension))

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        await self._breaker.call(lambda: self._inner.upsert(chunks))

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        await self._breaker.call(lambda: self._inner.delete(chunk_ids))

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        return await self._breaker.call(lambda: self._inner.chunk_ids_by_document(source))

    async def search(self, query: SearchQuery) -> list[Passage]:
        return await self._breaker.call(lambda: self._inner.search(query))

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        return await self._breaker.call(lambda: self._inner.chunks(document_ids))

    async def recreate(self, dense_dimension: int | None) -> None:
        await self._breaker.call(lambda: self._inner.recreate(dense_dimension))

    async def count(self) -> int:
        return await self._breaker.call(self._inner.count)

    async def probe(self) -> None:
        await self._breaker.probe(self._inner.probe)

    async def close(self) -> None:
        await self._inner.close()


class GuardedConversationStore:
    """A :class:`~rag_core.ports.ConversationStore` whose calls go through ``breaker``.

    NotFound and InvalidInput pass through untouched and do not count (given a
    breaker whose ``counts`` says so, as the composition root's does).
    """

    def __init__(self, inner: ConversationStore, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def create_session(self, user_id: str, title: str) -> Conversation:
        return await self._breaker.call(lambda: self._inner.create_session(user_id, title))

    async def get_session(self, session_id: str) -> Conversation | None:
        return await self._breaker.call(lambda: self._inner.get_session(session_id))

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        return await self._breaker.call(lambda: self._inner.list_sessions(user_id, limit, offset))

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        await self._breaker.call(lambda: self._inner.append(session_id, messages))

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        return await self._breaker.call(lambda: self._inner.messages(session_id, limit))

    async def rename(self, session_id: str, title: str) -> Conversation:
        return await self._breaker.call(lambda: self._inner.rename(session_id, title))

    async def delete_session(self, session_id: str) -> None:
        await self._breaker.call(lambda: self._inner.delete_session(session_id))

    async def delete_user_history(self, user_id: str) -> int:
        return await self._breaker.call(lambda: self._inner.delete_user_history(user_id))

    async def probe(self) -> None:
        await self._breaker.probe(self._inner.probe)


class GuardedEmbedder:
    """An :class:`~rag_core.ports.Embedder` whose ``embed`` goes through ``breaker``
    (``model`` and ``dimension`` are configuration, read without a call)."""

    def __init__(self, inner: Embedder, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        return await self._breaker.call(lambda: self._inner.embed(texts))


class GuardedChatModel:
    """A :class:`~rag_core.ports.ChatModel` whose calls go through ``breaker``.

    ``stream``: the breaker decides when iteration starts, before the inner stream is
    started (an open circuit refuses it with CircuitOpen from the first ``anext``); waiting for the first delta is the protected call: a failure before it
    counts, and its arrival (or an empty reply) is the success. The rest of the stream
    is consumed outside the breaker (a long reply holds no half-open trial slot), but
    an error mid-stream is recorded as a failure when the breaker counts it. Closing
    the stream early closes the inner one.
    """

    def __init__(self, inner: ChatModel, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        return await self._breaker.call(
            lambda: self._inner.complete(messages, max_tokens=max_tokens)
        )

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        upstream = self._inner.stream(messages, max_tokens=max_tokens)

        async def first() -> Delta | None:
            try:
                return await anext(upstream)
            except StopAsyncIteration:
                return None

        try:
            delta = await self._breaker.call(first)
            if delta is None:
                return
            yield delta
            while True:
                try:
                    delta = await anext(upstream)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    self._breaker.record_failure(exc)
                    raise
                yield delta
        finally:
            await upstream.aclose()
