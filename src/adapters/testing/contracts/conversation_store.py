"""The ConversationStore contract, run against every adapter.

A subclass provides the ``make_store`` fixture: a factory taking the fake clock and
id generator and returning a store with no sessions in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rag_core.answers import Citation
from rag_core.conversations import Conversation, Message, Role
from rag_core.errors import Conflict, InvalidInput, NotFound
from rag_core.ports import ConversationStore
from rag_core.testing import FakeClock, SequentialIds

START = datetime(2025, 1, 1, tzinfo=UTC)

StoreFactory = Callable[[FakeClock, SequentialIds], ConversationStore]

CITATION = Citation(
    number=1,
    title="Kinematics — «forward» 🤖",
    route="/docs/kinematics",
    heading_path=("Chapter 3", "Forward kinematics"),
    snippet='Joint angles "θ" map to poses.',
    score=0.123456789012345,
    chunk_id="chunk-1",
    document_id="doc-3",
)
SELECTION = Citation(
    number=2,
    title="Your selection",
    route="",
    heading_path=(),
    snippet="the selected words",
    score=1.0,
    chunk_id=None,
    document_id=None,
)


def message(session: Conversation, n: int, role: Role = Role.USER, **changes: object) -> Message:
    values: dict[str, object] = {
        "id": f"{session.id}-m{n}",
        "session_id": session.id,
        "role": role,
        "content": f"message {n}",
        "created_at": START + timedelta(minutes=n),
    }
    values.update(changes)
    return Message(**values)  # type: ignore[arg-type]


def is_utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


class ConversationStoreContract:
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        raise NotImplementedError("a contract subclass provides make_store")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(START, step=1.0)

    @pytest.fixture
    def store(self, make_store: StoreFactory, clock: FakeClock) -> ConversationStore:
        return make_store(clock, SequentialIds())

    async def test_create_then_get(self, store: ConversationStore) -> None:
        created = await store.create_session("alice", "Kinematics")
        assert created.user_id == "alice"
        assert created.title == "Kinematics"
        assert created.is_active
        assert created.message_count == 0
        assert created.created_at == created.updated_at
        assert await store.get_session(created.id) == created

    async def test_create_with_a_given_id(self, store: ConversationStore) -> None:
        created = await store.create_session_with_id("chosen-id", "alice", "Kinematics")
        assert (created.id, created.user_id, created.title) == ("chosen-id", "alice", "Kinematics")
        assert created.is_active and created.message_count == 0
        assert await store.get_session("chosen-id") == created
        with pytest.raises(Conflict):
            await store.create_session_with_id("chosen-id", "bob", "another")
        assert await store.get_session("chosen-id") == created

    async def test_get_unknown_is_none(self, store: ConversationStore) -> None:
        assert await store.get_session("no-such-session") is None

    async def test_list_is_newest_updated_first_and_per_user(
        self, store: ConversationStore
    ) -> None:
        first = await store.create_session("alice", "first")
        second = await store.create_session("alice", "second")
        third = await store.create_session("alice", "third")
        bobs = await store.create_session("bob", "bob's")
        await store.append(first.id, [message(first, 1)])

        listed = await store.list_sessions("alice", limit=10, offset=0)
        assert [s.id for s in listed] == [first.id, third.id, second.id]
        assert [s.message_count for s in listed] == [1, 0, 0]
        assert [s.id for s in await store.list_sessions("alice", 2, 1)] == [third.id, second.id]
        assert [s.id for s in await store.list_sessions("alice", 1, 2)] == [second.id]
        assert await store.list_sessions("alice", 10, 3) == []
        assert await store.list_sessions("alice", 0, 0) == []
        assert await store.list_sessions("bob", 10, 0) == [bobs]
        assert await store.list_sessions("carol", 10, 0) == []

    async def test_list_ties_are_ordered_by_id(
        self, store: ConversationStore, clock: FakeClock
    ) -> None:
        clock.step = 0.0
        created = [await store.create_session("alice", f"s{n}") for n in range(3)]
        listed = await store.list_sessions("alice", 10, 0)
        assert [s.id for s in listed] == sorted(s.id for s in created)

    async def test_list_rejects_negative_paging(self, store: ConversationStore) -> None:
        with pytest.raises(InvalidInput):
            await store.list_sessions("alice", -1, 0)
        with pytest.raises(InvalidInput):
            await store.list_sessions("alice", 1, -1)

    async def test_append_keeps_order_counts_and_touches(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        turn1 = [message(session, 1), message(session, 2, Role.ASSISTANT)]
        turn2 = [message(session, 3), message(session, 4, Role.ASSISTANT)]
        await store.append(session.id, turn1)
        await store.append(session.id, turn2)

        assert await store.messages(session.id) == turn1 + turn2
        stored = await store.get_session(session.id)
        assert stored is not None
        assert stored.message_count == 4
        assert stored.updated_at > session.updated_at
        assert stored.created_at == session.created_at

    async def test_append_order_is_insertion_not_created_at(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        late, early = message(session, 9), message(session, 1)
        await store.append(session.id, [late, early])
        assert await store.messages(session.id) == [late, early]

    async def test_append_is_idempotent_by_message_id(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        m1, m2, m3 = (message(session, n) for n in (1, 2, 3))
        await store.append(session.id, [m1, m2])
        await store.append(session.id, [m2, m3, m3])
        touched = await store.get_session(session.id)

        await store.append(session.id, [m1, m3])
        assert await store.messages(session.id) == [m1, m2, m3]
        assert await store.get_session(session.id) == touched

    async def test_concurrent_appends_all_land(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        sent = [message(session, n) for n in range(12)]
        await asyncio.gather(*(store.append(session.id, [m]) for m in sent))
        assert sorted(m.id for m in await store.messages(session.id)) == sorted(m.id for m in sent)
        stored = await store.get_session(session.id)
        assert stored is not None and stored.message_count == len(sent)

    async def test_append_to_unknown_session_raises(self, store: ConversationStore) -> None:
        ghost = Conversation(id="ghost", user_id="x", title="", created_at=START, updated_at=START)
        with pytest.raises(NotFound):
            await store.append("ghost", [message(ghost, 1)])
        with pytest.raises(NotFound):
            await store.append("ghost", [])

    async def test_append_rejects_foreign_or_naive_messages(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        other = await store.create_session("alice", "u")
        with pytest.raises(InvalidInput):
            await store.append(session.id, [message(other, 1)])
        with pytest.raises(InvalidInput):
            await store.append(session.id, [message(session, 1, created_at=datetime(2025, 1, 1))])
        assert await store.messages(session.id) == []

    async def test_messages_limit_gives_the_newest_oldest_first(
        self, store: ConversationStore
    ) -> None:
        session = await store.create_session("alice", "t")
        sent = [message(session, n) for n in range(1, 6)]
        await store.append(session.id, sent)

        assert await store.messages(session.id, limit=2) == sent[3:]
        assert await store.messages(session.id, limit=10) == sent
        assert await store.messages(session.id, limit=0) == []
        assert await store.messages("no-such-session") == []
        with pytest.raises(InvalidInput):
            await store.messages(session.id, limit=-1)

    async def test_sources_round_trip_exactly(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        answer = message(
            session,
            1,
            Role.ASSISTANT,
            content="Forward kinematics [1] — see your selection [2].",
            selected_text="the selected words\nover two lines",
            sources=(CITATION, SELECTION),
        )
        await store.append(session.id, [answer])

        (stored,) = await store.messages(session.id)
        assert stored == answer
        assert isinstance(stored.sources[0].heading_path, tuple)
        assert stored.sources[1].chunk_id is None
        assert stored.role is Role.ASSISTANT

    async def test_rename(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "old")
        await store.append(session.id, [message(session, 1)])
        renamed = await store.rename(session.id, "new")
        assert renamed.title == "new"
        assert renamed.message_count == 1
        assert renamed.updated_at > session.updated_at
        assert await store.get_session(session.id) == renamed
        with pytest.raises(NotFound):
            await store.rename("no-such-session", "x")

    async def test_delete_cascades_to_messages(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        kept = await store.create_session("alice", "kept")
        await store.append(session.id, [message(session, 1), message(session, 2)])
        await store.append(kept.id, [message(kept, 1)])

        await store.delete_session(session.id)
        assert await store.get_session(session.id) is None
        assert await store.messages(session.id) == []
        assert [s.id for s in await store.list_sessions("alice", 10, 0)] == [kept.id]
        assert len(await store.messages(kept.id)) == 1

    async def test_delete_unknown_raises(self, store: ConversationStore) -> None:
        with pytest.raises(NotFound):
            await store.delete_session("no-such-session")

    async def test_delete_user_history(self, store: ConversationStore) -> None:
        for title in ("a", "b", "c"):
            session = await store.create_session("alice", title)
            await store.append(session.id, [message(session, 1)])
        bobs = await store.create_session("bob", "b")
        await store.append(bobs.id, [message(bobs, 1)])

        assert await store.delete_user_history("alice") == 3
        assert await store.list_sessions("alice", 10, 0) == []
        assert await store.delete_user_history("alice") == 0
        assert await store.list_sessions("bob", 10, 0) == [await store.get_session(bobs.id)]
        assert await store.messages(bobs.id) == [message(bobs, 1)]

    async def test_timestamps_are_utc(self, store: ConversationStore) -> None:
        session = await store.create_session("alice", "t")
        plus_two = timezone(timedelta(hours=2))
        local = message(session, 1, created_at=datetime(2025, 6, 1, 14, 30, 0, 123456, plus_two))
        await store.append(session.id, [local])

        stored = await store.get_session(session.id)
        assert stored is not None
        assert is_utc(stored.created_at) and is_utc(stored.updated_at)
        (back,) = await store.messages(session.id)
        assert is_utc(back.created_at)
        assert back.created_at == datetime(2025, 6, 1, 12, 30, 0, 123456, UTC)
        (listed,) = await store.list_sessions("alice", 1, 0)
        assert is_utc(listed.updated_at)

    async def test_probe(self, store: ConversationStore) -> None:
        await store.probe()
