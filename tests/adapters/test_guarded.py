"""The Guarded* port decorators: every outside call goes through the breaker.

Delegation is proved by running the port contracts against guarded in-memory
adapters; the breaker's part by opening the circuit and calling every method.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.conversations import InMemoryConversationStore
from adapters.memory.index import InMemoryIndex
from adapters.resilience import (
    Breaker,
    CircuitOpen,
    GuardedChatModel,
    GuardedConversationStore,
    GuardedEmbedder,
    GuardedIndex,
)
from adapters.testing.contracts.conversation_store import (
    ConversationStoreContract,
    StoreFactory,
)
from adapters.testing.contracts.vector_index import VectorIndexContract
from rag_core.conversations import Message, Role
from rag_core.documents import SparseVector
from rag_core.errors import DependencyUnavailable, InvalidInput
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

THRESHOLD = 2
RECOVERY = 10.0


class Seconds:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def counting_breaker(name: str, clock: Callable[[], float] | None = None) -> Breaker:
    return Breaker(
        name,
        failure_threshold=THRESHOLD,
        recovery_timeout=RECOVERY,
        counts=lambda exc: isinstance(exc, DependencyUnavailable),
        clock=clock,
    )


async def trip(breaker: Breaker) -> None:
    for _ in range(THRESHOLD):
        breaker.record_failure(DependencyUnavailable(breaker.name, "ConnectError"))
    assert breaker.snapshot().state == "open"


class TestGuardedIndexContract(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return GuardedIndex(InMemoryIndex(), counting_breaker("qdrant"))


class TestGuardedConversationStoreContract(ConversationStoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda clock, ids: GuardedConversationStore(
            InMemoryConversationStore(clock, ids), counting_breaker("postgres")
        )


class ScriptedChat:
    """A chat model whose replies are scripted deltas; it can fail before the first
    delta or after some, and it remembers whether its stream was closed."""

    def __init__(self, deltas: Sequence[str] = ("Hello", " world")) -> None:
        self.deltas = tuple(deltas)
        self.fail_after: int | None = None
        self.error: Exception = DependencyUnavailable("openai", "ReadTimeout")
        self.calls = 0
        self.closed = False

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        self.calls += 1
        if self.fail_after is not None:
            raise self.error
        return Completion(text=f"{len(messages)} messages, max {max_tokens}")

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        self.calls += 1
        try:
            for sent, text in enumerate(self.deltas):
                if sent == self.fail_after:
                    raise self.error
                yield Delta(text)
            if self.fail_after == len(self.deltas):
                raise self.error
        finally:
            self.closed = True


class HashEmbedder:
    model = "hash-3"
    dimension = 3

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls += 1
        return [(float(len(t)), 1.0, 0.0) for t in texts]


PROMPT = [ChatMessage(role=Role.USER, content="hi")]


async def collect(stream: AsyncIterator[Delta]) -> list[str]:
    return [delta.text async for delta in stream]


def test_guarded_classes_satisfy_their_ports() -> None:
    breaker = counting_breaker("any")
    guarded = (
        GuardedIndex(InMemoryIndex(), breaker),
        GuardedConversationStore(InMemoryConversationStore(), breaker),
        GuardedEmbedder(HashEmbedder(), breaker),
        GuardedChatModel(ScriptedChat(), breaker),
    )
    # The annotations are the check (mypy); the asserts only keep the names used.
    index: VectorIndex = guarded[0]
    store: ConversationStore = guarded[1]
    embedder: Embedder = guarded[2]
    chat: ChatModel = guarded[3]
    assert (index, store, embedder, chat) == guarded
    assert all(g.breaker is breaker for g in guarded)


QUERY = SearchQuery(sparse=SparseVector(indices=(1,), values=(1.0,)))
INDEX_CALLS: list[Callable[[GuardedIndex], Awaitable[object]]] = [
    lambda g: g.prepare(None),
    lambda g: g.upsert([]),
    lambda g: g.delete(["x"]),
    lambda g: g.chunk_ids_by_document(),
    lambda g: g.search(QUERY),
    lambda g: g.count(),
]
MESSAGE = Message(
    id="m1",
    session_id="s1",
    role=Role.USER,
    content="hi",
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
)
STORE_CALLS: list[Callable[[GuardedConversationStore], Awaitable[object]]] = [
    lambda g: g.create_session("alice", "t"),
    lambda g: g.get_session("s1"),
    lambda g: g.list_sessions("alice", 10, 0),
    lambda g: g.append("s1", [MESSAGE]),
    lambda g: g.messages("s1"),
    lambda g: g.rename("s1", "t"),
    lambda g: g.delete_session("s1"),
    lambda g: g.delete_user_history("alice"),
]


@pytest.mark.parametrize("call", INDEX_CALLS)
async def test_every_index_call_is_refused_while_open(
    call: Callable[[GuardedIndex], Awaitable[object]],
) -> None:
    guarded = GuardedIndex(InMemoryIndex(), counting_breaker("qdrant"))
    await trip(guarded.breaker)
    with pytest.raises(CircuitOpen):
        await call(guarded)


@pytest.mark.parametrize("call", STORE_CALLS)
async def test_every_store_call_is_refused_while_open(
    call: Callable[[GuardedConversationStore], Awaitable[object]],
) -> None:
    inner = InMemoryConversationStore()
    guarded = GuardedConversationStore(inner, counting_breaker("postgres"))
    await trip(guarded.breaker)
    with pytest.raises(CircuitOpen):
        await call(guarded)
    assert await inner.list_sessions("alice", 10, 0) == []


@pytest.mark.parametrize("make", [GuardedIndex, GuardedConversationStore])
async def test_probe_and_close_are_never_refused(make: Any) -> None:
    inner = InMemoryIndex() if make is GuardedIndex else InMemoryConversationStore()
    guarded = make(inner, counting_breaker("dep"))
    await trip(guarded.breaker)
    await guarded.probe()
    assert guarded.breaker.snapshot().state == "open"
    if isinstance(guarded, GuardedIndex):
        await guarded.close()


async def test_a_probe_after_recovery_closes_the_circuit() -> None:
    clock = Seconds()
    guarded = GuardedIndex(InMemoryIndex(), counting_breaker("qdrant", clock))
    await trip(guarded.breaker)
    clock.value += RECOVERY
    await guarded.probe()
    assert guarded.breaker.snapshot().state == "closed"
    assert await guarded.count() == 0


async def test_embedder_is_guarded_and_reports_its_configuration() -> None:
    inner = HashEmbedder()
    guarded = GuardedEmbedder(inner, counting_breaker("openai"))
    assert (guarded.model, guarded.dimension) == ("hash-3", 3)
    assert await guarded.embed(["ab", "c"]) == [(2.0, 1.0, 0.0), (1.0, 1.0, 0.0)]
    await trip(guarded.breaker)
    with pytest.raises(CircuitOpen):
        await guarded.embed(["ab"])
    assert inner.calls == 1
    assert (guarded.model, guarded.dimension) == ("hash-3", 3)


async def test_complete_is_guarded_and_counts_failures() -> None:
    inner = ScriptedChat()
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    assert (await guarded.complete(PROMPT, max_tokens=5)).text == "1 messages, max 5"
    inner.fail_after = 0
    for _ in range(THRESHOLD):
        with pytest.raises(DependencyUnavailable, match="ReadTimeout"):
            await guarded.complete(PROMPT)
    with pytest.raises(CircuitOpen):
        await guarded.complete(PROMPT)
    assert inner.calls == 1 + THRESHOLD


async def test_complete_passes_our_own_errors_through_without_counting() -> None:
    inner = ScriptedChat()
    inner.fail_after, inner.error = 0, InvalidInput("context too long")
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    for _ in range(THRESHOLD + 1):
        with pytest.raises(InvalidInput):
            await guarded.complete(PROMPT)
    assert guarded.breaker.snapshot().failure_count == 0


async def test_stream_yields_every_delta_and_a_first_delta_is_a_success() -> None:
    inner = ScriptedChat(["a", "b", "c"])
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    guarded.breaker.record_failure(DependencyUnavailable("openai", "ReadTimeout"))
    assert await collect(guarded.stream(PROMPT)) == ["a", "b", "c"]
    assert guarded.breaker.snapshot().failure_count == 0
    assert inner.closed


async def test_an_empty_stream_is_a_success() -> None:
    guarded = GuardedChatModel(ScriptedChat([]), counting_breaker("openai"))
    guarded.breaker.record_failure(DependencyUnavailable("openai", "ReadTimeout"))
    assert await collect(guarded.stream(PROMPT)) == []
    assert guarded.breaker.snapshot().failure_count == 0


async def test_stream_failure_before_the_first_delta_counts_and_open_refuses() -> None:
    inner = ScriptedChat()
    inner.fail_after = 0
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    for _ in range(THRESHOLD):
        with pytest.raises(DependencyUnavailable, match="ReadTimeout"):
            await collect(guarded.stream(PROMPT))
    assert guarded.breaker.snapshot().state == "open"
    refused = guarded.stream(PROMPT)
    with pytest.raises(CircuitOpen):
        await anext(refused)
    assert inner.calls == THRESHOLD  # the refused stream never started the inner one


async def test_stream_failure_mid_stream_is_recorded() -> None:
    inner = ScriptedChat(["a", "b"])
    inner.fail_after = 1
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    received: list[str] = []
    with pytest.raises(DependencyUnavailable):
        async for delta in guarded.stream(PROMPT):
            received.append(delta.text)
    assert received == ["a"]
    snapshot = guarded.breaker.snapshot()
    assert (snapshot.failure_count, snapshot.last_failure) == (1, "DependencyUnavailable")


async def test_closing_a_stream_early_closes_the_inner_one_and_counts_nothing() -> None:
    inner = ScriptedChat(["a", "b", "c"])
    guarded = GuardedChatModel(inner, counting_breaker("openai"))
    stream = guarded.stream(PROMPT)
    assert (await anext(stream)).text == "a"
    await stream.aclose()
    assert inner.closed
    assert guarded.breaker.snapshot().failure_count == 0


async def test_a_long_stream_does_not_hold_the_half_open_trial_slot() -> None:
    clock = Seconds()
    inner = ScriptedChat(["a", "b"])
    guarded = GuardedChatModel(inner, counting_breaker("openai", clock))
    await trip(guarded.breaker)
    clock.value += RECOVERY + 1
    first = guarded.stream(PROMPT)
    assert (await anext(first)).text == "a"  # the trial succeeded and closed the circuit
    assert await collect(guarded.stream(PROMPT)) == ["a", "b"]
    assert await collect(first) == ["b"]
