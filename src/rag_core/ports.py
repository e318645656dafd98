"""The ports: what the core needs from the outside world, as Protocols.

Every method that talks to an outside system is ``async`` and may raise
:class:`~rag_core.errors.DependencyUnavailable` when that system fails or times
out; adapters bound every call with a timeout of their own, so no method here
blocks for longer than its adapter's configured timeout.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from rag_core.answers import Passage
from rag_core.answers import Usage as Usage  # re-exported: part of the ChatModel port
from rag_core.conversations import Conversation, Message, Role
from rag_core.documents import Chunk, IndexedChunk, SparseVector


@attrs.frozen(slots=True)
class SearchQuery:
    """A search over the index.

    ``sparse`` is always given (lexical retrieval needs no model); ``dense`` is
    given when an embedder is configured, and the index then fuses both (RRF).
    ``filters`` match payload fields exactly (``document_id``, ``section``, ``tenant``).
    """

    sparse: SparseVector
    dense: tuple[float, ...] | None = None
    limit: int = 8
    filters: Mapping[str, str] = attrs.field(factory=dict)


class SparseEncoder(Protocol):
    """Turns text into sparse term vectors (pure computation, no I/O)."""

    def encode_document(self, text: str, heading: str = "") -> SparseVector:
        """Document-side weights (term-frequency saturation, length normalisation);
        ``heading`` is the chunk's breadcrumb (page title and headings), a field that
        may count more than its text."""
        ...

    def encode_query(self, text: str) -> SparseVector:
        """Query-side weights; the index applies inverse document frequency."""
        ...


class VectorIndex(Protocol):
    """Stores indexed chunks and searches them.

    Upsert is idempotent by chunk id. The sparse vector is stored for an
    inverse-document-frequency modifier applied by the index at search time
    (BM25 with the encoder's document-side weights).
    """

    async def prepare(self, dense_dimension: int | None) -> None:
        """Create the collection if missing (idempotent).

        Raises :class:`~rag_core.errors.IndexMismatch` if it exists with
        another dense dimension than ``dense_dimension``, or if a lexical-only
        collection is asked for a dense one. ``None`` on a collection that has a
        dense vector is allowed (the embedder was removed; search goes on lexically).
        """
        ...

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Insert or replace chunks by id."""
        ...

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        """Delete chunks by id; unknown ids are ignored."""
        ...

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        """Every stored chunk id, grouped by document id (what re-ingestion diffs
        against); with ``source``, only the chunks ingested from that source."""
        ...

    async def search(self, query: SearchQuery) -> list[Passage]:
        """The best passages, best first, ranks from 1; at most ``query.limit``."""
        ...

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        """Every stored chunk (text and payload, not vectors), in no set order: what
        re-embedding for another embedder starts from; with ``document_ids``, only
        those documents' chunks (a passage's neighbours are read with :meth:`neighbourhood`)."""
        ...

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        """The chunks whose document and ordinal fall in one of ``spans``, each
        ``(document_id, first, last)`` with both ordinals included, in no set order
        (a passage's neighbours, for wider context: only those, not every chunk of
        the document)."""
        ...

    async def recreate(self, dense_dimension: int | None) -> None:
        """Drop every chunk and lay the collection out anew for ``dense_dimension``
        (then prepared for it: upserts may follow at once)."""
        ...

    async def count(self) -> int:
        """How many chunks are stored."""
        ...

    async def probe(self) -> None:
        """A cheap liveness check; raises DependencyUnavailable if the index cannot answer."""
        ...

    async def close(self) -> None:
        """Release connections, files and locks."""
        ...


class Embedder(Protocol):
    """Turns texts into dense vectors. Optional: the system runs lexically without one."""

    @property
    def model(self) -> str:
        """The embedding model's name (recorded with the index)."""
        ...

    @property
    def dimension(self) -> int:
        """The length of every vector this embedder returns."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """One vector per text, in order. Batches as the adapter sees fit."""
        ...


@attrs.frozen(slots=True)
class ChatMessage:
    role: Role
    content: str


@attrs.frozen(slots=True)
class Completion:
    text: str
    usage: Usage = attrs.field(factory=Usage)


@attrs.frozen(slots=True)
class Delta:
    """A piece of a streamed reply. The last one may carry only ``usage``."""

    text: str
    usage: Usage | None = None


class ChatModel(Protocol):
    """A chat-completion model. Optional: without one, answers are extractive.

    Both methods raise DependencyUnavailable when the model's server fails, times
    out or rate-limits beyond the adapter's bounded retries, and InvalidInput
    when the server refuses the request itself (e.g. the context is too long).
    """

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        """The whole reply."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        """The reply as deltas, in order. Closing the generator early (``aclose()``)
        cancels the upstream call; no generation is left running."""
        ...


class ConversationStore(Protocol):
    """Persists chat sessions and their messages. Ownership is checked by the
    use cases; the store only stores. Missing sessions raise NotFound."""

    async def create_session(self, user_id: str, title: str) -> Conversation:
        """A new, active session with no messages."""
        ...

    async def create_session_with_id(
        self, session_id: str, user_id: str, title: str
    ) -> Conversation:
        """A new, active session with no messages and the given id (one created
        elsewhere first: the outbox creates sessions during an outage and writes them
        here later). Raises Conflict when a session with that id exists."""
        ...

    async def get_session(self, session_id: str) -> Conversation | None:
        """The session, or None if there is none with that id."""
        ...

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        """The user's sessions, most recently updated first."""
        ...

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        """Append messages in order (idempotent by message id) and touch the session.

        Raises InvalidInput, writing nothing, for a batch that
        :func:`rag_core.conversations.check_appended` refuses."""
        ...

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        """The session's messages, oldest first; with ``limit``, the newest ``limit`` of them."""
        ...

    async def rename(self, session_id: str, title: str) -> Conversation:
        """Set the title; raises NotFound for an unknown session."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Delete the session and its messages; raises NotFound for an unknown session."""
        ...

    async def delete_user_history(self, user_id: str) -> int:
        """Delete every session of the user; returns how many were deleted."""
        ...

    async def probe(self) -> None:
        """A cheap liveness check; raises DependencyUnavailable if the store cannot answer."""
        ...


class HealthProbe(Protocol):
    """One component's health check, run in the background with a deadline."""

    @property
    def name(self) -> str: ...

    async def check(self) -> None:
        """Return if healthy; raise (any exception) if not."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A new unique id (a UUID string)."""
        ...
