"""The conversation outbox: turns survive a database outage and a restart, and reach
the database in order, exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.memory.conversations import InMemoryConversationStore
from adapters.memory.index import InMemoryIndex
from adapters.outbox import OutboxConversationStore, PresetIds
from adapters.system import SystemClock, UuidGenerator
from adapters.testing.contracts.conversation_store import (
    CITATION,
    SELECTION,
    ConversationStoreContract,
    StoreFactory,
)
from rag_core.answering import Answerer
from rag_core.chat import ChatService
from rag_core.conversations import Conversation, Message, Role
from rag_core.errors import DependencyUnavailable, Forbidden, InvalidInput
from rag_core.lexical import LexicalEncoder
from rag_core.ports import ConversationStore
from rag_core.retrieval import Retriever
from rag_core.testing import FakeClock, SequentialIds

T0 = datetime(2025, 3, 1, tzinfo=UTC)


class FlakyStore(InMemoryConversationStore):
    """The in-memory store with a switch: ``down`` makes every call raise
    DependencyUnavailable; so do the appends whose call number (from 1) is in
    ``failing_calls``. ``lose_replies`` appends write and then fail, as when the
    reply is lost;
    ``gate`` holds appends (after writing) until it is set. ``written`` records every
    batch that reached the store, in order."""

    def __init__(self, clock: FakeClock | None = None, ids: PresetIds | None = None) -> None:
        super().__init__(clock, ids)
        self.down = False
        self.failing_calls: set[int] = set()
        self.calls = 0
        self.lose_replies = 0
        self.gate: asyncio.Event | None = None
        self.held = asyncio.Event()
        self.written: list[list[str]] = []

    def _check(self) -> None:
        if self.down:
            raise DependencyUnavailable("database", "down")

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        self._check()
        self.calls += 1
        if self.calls in self.failing_calls:
            raise DependencyUnavailable("database", "refused")
        await super().append(session_id, messages)
        self.written.append([m.id for m in messages])
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()
        if self.lose_replies:
            self.lose_replies -= 1
            raise DependencyUnavailable("database", "connection reset")

    async def create_session(self, user_id: str, title: str) -> Conversation:
        self._check()
        return await super().create_session(user_id, title)

    async def get_session(self, session_id: str) -> Conversation | None:
        self._check()
        return await super().get_session(session_id)

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        self._check()
        return await super().list_sessions(user_id, limit, offset)

    async def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        self._check()
        return await super().messages(session_id, limit)

    async def rename(self, session_id: str, title: str) -> Conversation:
        self._check()
        return await super().rename(session_id, title)

    async def delete_session(self, session_id: str) -> None:
        self._check()
        await super().delete_session(session_id)


Opener = Callable[..., OutboxConversationStore]  # (inner, *, session_ids=None, timeout=5.0)


@pytest.fixture
async def open_outbox(tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens outboxes on one file (as successive processes would); closes them all."""
    opened: list[OutboxConversationStore] = []

    def open_(
        inner: ConversationStore, *, session_ids: PresetIds | None = None, timeout: float = 5.0
    ) -> OutboxConversationStore:
        path = tmp_path / "data" / "outbox.db"
        outbox = OutboxConversationStore(
            inner, path, dependency="database", session_ids=session_ids, timeout=timeout
        )
        opened.append(outbox)
        return outbox

    yield open_
    for outbox in opened:
        await outbox.close()


@pytest.fixture
def ids() -> PresetIds:
    return PresetIds(SequentialIds())


@pytest.fixture
def inner(ids: PresetIds) -> FlakyStore:
    return FlakyStore(ids=ids)


def turn(session: Conversation, n: int) -> list[Message]:
    return [
        Message(f"{session.id}-q{n}", session.id, Role.USER, f"question {n}", T0),
        Message(f"{session.id}-a{n}", session.id, Role.ASSISTANT, f"answer {n}", T0),
    ]


def ids_of(messages: Sequence[Message]) -> list[str]:
    return [m.id for m in messages]


class TestOutboxContract(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, open_outbox: Opener) -> StoreFactory:
        return lambda clock, ids: open_outbox(InMemoryConversationStore(clock, ids))


class TestChatViewContract(ConversationStoreContract):
    @pytest.fixture
    def make_store(self, open_outbox: Opener) -> StoreFactory:
        return lambda clock, ids: open_outbox(InMemoryConversationStore(clock, ids)).chat_view()


async def test_a_turn_the_database_cannot_take_is_kept_and_flushed(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    assert outbox.pending() == 1
    assert inner.written == []

    assert await outbox.flush() == 0  # still down: nothing written, nothing lost
    inner.down = False
    assert await outbox.flush() == 1
    assert outbox.pending() == 0
    assert await inner.messages(session.id) == turn(session, 1)


async def test_batches_keep_their_order_across_sessions(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    a = await outbox.create_session("alice", "a")
    b = await outbox.create_session("bob", "b")
    inner.down = True
    await outbox.append(a.id, turn(a, 1))
    await outbox.append(b.id, turn(b, 1))
    await outbox.append(a.id, turn(a, 2))
    inner.down = False
    # The database is back but earlier batches wait: this one goes behind them.
    await outbox.append(b.id, turn(b, 2))
    assert outbox.pending() == 4 and inner.written == []

    assert await outbox.flush() == 4
    expected = [turn(a, 1), turn(b, 1), turn(a, 2), turn(b, 2)]
    assert inner.written == [ids_of(t) for t in expected]
    await outbox.append(a.id, turn(a, 3))  # nothing pending: straight through
    assert inner.written[-1] == ids_of(turn(a, 3)) and outbox.pending() == 0


async def test_a_replay_whose_reply_was_lost_does_not_duplicate(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    inner.down = False
    inner.lose_replies = 1
    assert await outbox.flush() == 0  # written, but the store could not say so
    assert outbox.pending() == 1
    assert await outbox.flush() == 1
    assert await inner.messages(session.id) == turn(session, 1)


async def test_a_crash_between_write_and_delete_replays_once(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    first = open_outbox(inner)
    session = await first.create_session("alice", "t")
    inner.down = True
    await first.append(session.id, turn(session, 1))
    await first.append(session.id, turn(session, 2))
    inner.down = False
    inner.gate = asyncio.Event()
    flushing = asyncio.create_task(first.flush())
    async with asyncio.timeout(5):
        await inner.held.wait()  # the first batch is in the database, not yet deleted
    flushing.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await flushing
    await first.close()
    inner.gate = None

    restarted = open_outbox(inner)
    assert restarted.pending() == 2
    assert await restarted.flush() == 2
    assert await inner.messages(session.id) == turn(session, 1) + turn(session, 2)


async def test_pending_batches_survive_a_restart(inner: FlakyStore, open_outbox: Opener) -> None:
    first = open_outbox(inner)
    a = await first.create_session("alice", "a")
    inner.down = True
    await first.append(a.id, turn(a, 1))
    await first.append(a.id, turn(a, 2))
    await first.close()

    restarted = open_outbox(inner)
    assert restarted.pending() == 2
    inner.down = False
    assert await restarted.flush() == 2
    assert await inner.messages(a.id) == turn(a, 1) + turn(a, 2)


async def test_flush_stops_at_the_first_failure_and_keeps_the_rest(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    for n in range(1, 4):
        await outbox.append(session.id, turn(session, n))
    inner.down = False
    inner.failing_calls = {inner.calls + 2}  # the second replay fails
    assert await outbox.flush() == 1
    assert outbox.pending() == 2
    assert await inner.messages(session.id) == turn(session, 1)
    assert await outbox.flush() == 2
    assert await inner.messages(session.id) == turn(session, 1) + turn(session, 2) + turn(
        session, 3
    )


async def test_appends_during_a_flush_go_behind_it(inner: FlakyStore, open_outbox: Opener) -> None:
    outbox = open_outbox(inner)
    a = await outbox.create_session("alice", "a")
    b = await outbox.create_session("bob", "b")
    inner.down = True
    await outbox.append(a.id, turn(a, 1))
    await outbox.append(b.id, turn(b, 1))
    inner.down = False
    inner.gate = asyncio.Event()
    flushing = asyncio.create_task(outbox.flush())
    async with asyncio.timeout(5):
        await inner.held.wait()  # the flush is in the middle of its first batch
    late = [(b.id, turn(b, 2)), (a.id, turn(a, 2)), (b.id, turn(b, 3))]
    await asyncio.gather(*(outbox.append(sid, batch) for sid, batch in late))
    assert not flushing.done()
    inner.gate.set()
    async with asyncio.timeout(5):
        flushed = await flushing
    assert flushed == 5 and outbox.pending() == 0
    accepted = [turn(a, 1), turn(b, 1), turn(b, 2), turn(a, 2), turn(b, 3)]
    assert inner.written == [ids_of(t) for t in accepted]
    assert await inner.messages(b.id) == turn(b, 1) + turn(b, 2) + turn(b, 3)


async def test_only_one_flush_runs_at_a_time(inner: FlakyStore, open_outbox: Opener) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    inner.down = False
    assert sorted(await asyncio.gather(outbox.flush(), outbox.flush())) == [0, 1]
    assert inner.written == [ids_of(turn(session, 1))]


async def test_queued_messages_round_trip_exactly(inner: FlakyStore, open_outbox: Opener) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    plus_two = timezone(timedelta(hours=2))
    sent = [
        Message(
            "m1",
            session.id,
            Role.USER,
            'Forward kinematics — «θ» 🤖 \ud800 "quoted"\n',
            datetime(2025, 6, 1, 14, 30, 0, 123456, plus_two),
            selected_text="the selected words\nover two lines",
        ),
        Message(
            "m2", session.id, Role.ASSISTANT, "See [1] and [2].", T0, sources=(CITATION, SELECTION)
        ),
    ]
    inner.down = True
    await outbox.append(session.id, sent)
    await outbox.close()
    restarted = open_outbox(inner)
    inner.down = False
    await restarted.flush()
    assert await inner.messages(session.id) == sent


async def test_invalid_batches_are_refused_not_queued(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    naive = Message("m1", session.id, Role.USER, "q", datetime(2025, 1, 1))
    with pytest.raises(InvalidInput):
        await outbox.append(session.id, [naive])
    with pytest.raises(InvalidInput):
        await outbox.append("another", turn(session, 1))
    assert outbox.pending() == 0


async def test_a_hanging_database_is_given_up_on_in_time(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner, timeout=0.05)
    session = await outbox.create_session("alice", "t")
    inner.gate = asyncio.Event()  # the write hangs
    async with asyncio.timeout(2):
        await outbox.append(session.id, turn(session, 1))
    assert outbox.pending() == 1
    inner.gate = None
    assert await outbox.flush() == 1
    assert await inner.messages(session.id) == turn(session, 1)  # once, not twice


async def test_an_entry_that_cannot_be_written_is_parked_not_lost(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    gone = await outbox.create_session("alice", "gone")
    kept = await outbox.create_session("alice", "kept")
    inner.down = True
    await outbox.append(gone.id, turn(gone, 1))
    await outbox.append(kept.id, turn(kept, 1))
    inner.down = False
    await inner.delete_session(gone.id)  # by another process, behind the outbox's back

    assert await outbox.flush() == 1
    assert (outbox.pending(), outbox.parked()) == (0, 1)
    assert await inner.messages(kept.id) == turn(kept, 1)
    await outbox.close()
    assert open_outbox(inner).parked() == 1


async def test_the_background_loop_flushes_once_the_database_is_back(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    loop = asyncio.create_task(outbox.run(interval=0.01))
    try:
        await asyncio.sleep(0.05)
        assert outbox.pending() == 1
        inner.down = False
        for _ in range(500):  # at most 5 s
            if not outbox.pending():
                break
            await asyncio.sleep(0.01)
        assert outbox.pending() == 0
    finally:
        loop.cancel()
    assert await inner.messages(session.id) == turn(session, 1)


async def test_the_file_is_private_and_in_wal_mode(
    inner: FlakyStore, open_outbox: Opener, tmp_path: Path
) -> None:
    open_outbox(inner)
    path = tmp_path / "data" / "outbox.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


async def test_history_reads_are_503_while_down_and_drain_first_when_back(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    for read in (
        outbox.get_session(session.id),
        outbox.list_sessions("alice", 10, 0),
        outbox.messages(session.id),
    ):
        with pytest.raises(DependencyUnavailable):
            await read
    inner.down = False
    assert await outbox.messages(session.id) == turn(session, 1)  # flushed, then read
    assert outbox.pending() == 0


async def test_a_read_waits_for_a_slow_flush_only_so_long(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    outbox = open_outbox(inner, timeout=0.05)
    session = await outbox.create_session("alice", "t")
    inner.down = True
    await outbox.append(session.id, turn(session, 1))
    inner.down = False
    inner.gate = asyncio.Event()  # the replay hangs
    async with asyncio.timeout(2):
        with pytest.raises(DependencyUnavailable) as raised:
            await outbox.get_session(session.id)
    assert raised.value.retry_after is not None
    inner.gate = None
    assert await outbox.get_session(session.id) is not None
    assert outbox.pending() == 0
    assert await inner.messages(session.id) == turn(session, 1)


def chat_service(conversations: ConversationStore) -> ChatService:
    answerer = Answerer(Retriever(InMemoryIndex(), LexicalEncoder()))
    return ChatService(answerer, conversations, SystemClock(), UuidGenerator())


async def test_signed_in_chat_goes_on_during_an_outage(
    inner: FlakyStore, open_outbox: Opener, ids: PresetIds
) -> None:
    outbox = open_outbox(inner, session_ids=ids)
    chat = chat_service(outbox.chat_view())
    alice = (await chat.ask("What is a robot?", user_id="alice")).session_id
    assert alice is not None
    inner.down = True

    assert (await chat.ask("And a joint?", user_id="alice", session_id=alice)).session_id == alice
    assert (await chat.ask("And a link?", user_id="alice")).session_id == alice
    with pytest.raises(Forbidden):  # ownership still holds, on the remembered owner
        await chat.ask("Peek", user_id="mallory", session_id=alice)
    with pytest.raises(DependencyUnavailable):  # a session never seen cannot be checked
        await chat.ask("Unknown", user_id="alice", session_id="id-999999")
    history = await outbox.chat_view().messages(alice, limit=10)
    assert [m.content for m in history if m.role is Role.USER] == [
        "What is a robot?",
        "And a joint?",
        "And a link?",
    ]
    bob = (await chat.ask("First question", user_id="bob")).session_id  # created in the outbox
    assert bob is not None
    await chat.ask("Second question", user_id="bob", session_id=bob)

    await outbox.close()
    restarted = open_outbox(inner, session_ids=ids)
    chat = chat_service(restarted.chat_view())
    await chat.ask("After a restart", user_id="bob", session_id=bob)
    await chat.ask("Still here", user_id="alice", session_id=alice)
    inner.down = False
    assert restarted.pending() == 7  # 4 turns of alice's, bob's session and 3 turns
    assert await restarted.flush() == 7

    def questions(messages: list[Message]) -> list[str]:
        return [m.content for m in messages if m.role is Role.USER]

    assert questions(await inner.messages(alice)) == [
        "What is a robot?",
        "And a joint?",
        "And a link?",
        "Still here",
    ]
    bobs = await inner.get_session(bob)
    assert bobs is not None and bobs.user_id == "bob"
    assert questions(await inner.messages(bob)) == [
        "First question",
        "Second question",
        "After a restart",
    ]


async def test_a_session_created_in_the_outbox_is_created_once(
    inner: FlakyStore, open_outbox: Opener, ids: PresetIds
) -> None:
    outbox = open_outbox(inner, session_ids=ids)
    view = outbox.chat_view()
    inner.down = True
    session = await view.create_session("carol", "t")
    await view.append(session.id, turn(session, 1))
    inner.down = False
    inner.lose_replies = 1  # the session is created, the batch written, its reply lost
    assert await outbox.flush() == 1
    assert await outbox.flush() == 1
    assert [s.id for s in await inner.list_sessions("carol", 10, 0)] == [session.id]
    assert await inner.messages(session.id) == turn(session, 1)


async def test_without_session_ids_a_new_session_needs_the_database(
    inner: FlakyStore, open_outbox: Opener
) -> None:
    view = open_outbox(inner).chat_view()
    inner.down = True
    with pytest.raises(DependencyUnavailable):
        await view.create_session("dave", "t")


async def test_preset_ids_apply_once_and_only_to_their_task() -> None:
    ids = PresetIds(SequentialIds())
    started, go = asyncio.Event(), asyncio.Event()

    async def concurrent_request() -> str:
        started.set()
        await go.wait()
        return ids.new_id()

    request = asyncio.create_task(concurrent_request())
    await started.wait()
    with ids.preset("chosen"):
        go.set()
        drawn_elsewhere = await request
        assert ids.new_id() == "chosen"
        assert ids.new_id() == "id-000002"
    assert drawn_elsewhere == "id-000001"
    assert ids.new_id() == "id-000003"
