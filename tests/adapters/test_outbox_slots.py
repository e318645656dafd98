"""Outbox files with N processes on one DATA_DIR: each process claims a file of its own,
the files nobody holds any more are adopted, and every turn reaches the database once,
in the order it was accepted."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.memory.conversations import InMemoryConversationStore
from adapters.outbox import OutboxConversationStore
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema
from outbox_process import OutboxProcess, Switch, turn
from postgres import fresh_database
from rag_core.ports import ConversationStore

Opener = Callable[[ConversationStore], OutboxConversationStore]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def open_outbox(data_dir: Path) -> AsyncIterator[Opener]:
    """Opens outboxes on one DATA_DIR, as the processes of one host would; closes them."""
    opened: list[OutboxConversationStore] = []

    def open_(inner: ConversationStore) -> OutboxConversationStore:
        outbox = OutboxConversationStore(inner, data_dir / "outbox.db", dependency="database")
        opened.append(outbox)
        return outbox

    yield open_
    for outbox in opened:
        await outbox.close()


@pytest.fixture
def processes() -> Iterator[list[OutboxProcess]]:
    """Other processes started by a test; killed at the end if still running."""
    started: list[OutboxProcess] = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
async def database() -> InMemoryConversationStore:
    """The database the processes share (in memory: replays happen in this process),
    with the sessions s1 and s2."""
    store = InMemoryConversationStore()
    await store.create_session_with_id("s1", "alice", "one")
    await store.create_session_with_id("s2", "bob", "two")
    return store


def ids(*turns: tuple[str, int]) -> list[list[str]]:
    return [[m.id for m in turn(session, n)] for session, n in turns]


def questions(session_id: str, *numbers: int) -> list[str]:
    return [m.id for n in numbers for m in turn(session_id, n)]


async def stored(store: ConversationStore, session_id: str) -> list[str]:
    return [m.id for m in await store.messages(session_id)]


async def test_two_stores_on_one_data_dir_get_different_files(
    open_outbox: Opener, database: InMemoryConversationStore, data_dir: Path
) -> None:
    first, second = open_outbox(database), open_outbox(database)
    assert first.path == data_dir / "outbox.db"  # a single process: the file it always had
    assert second.path == data_dir / "outbox-1.db"


async def test_another_process_gets_another_file(
    open_outbox: Opener,
    database: InMemoryConversationStore,
    data_dir: Path,
    processes: list[OutboxProcess],
) -> None:
    processes.append(other := OutboxProcess(data_dir))
    here = open_outbox(database)
    assert other.path == data_dir / "outbox.db"
    assert here.path == data_dir / "outbox-1.db"


async def test_a_closed_store_frees_its_slot(
    open_outbox: Opener, database: InMemoryConversationStore, data_dir: Path
) -> None:
    first, second = open_outbox(database), open_outbox(database)
    await first.close()
    assert open_outbox(database).path == data_dir / "outbox.db"
    await second.close()
    assert open_outbox(database).path == data_dir / "outbox-1.db"


async def test_a_file_left_by_a_closed_process_is_picked_up_by_the_next(
    open_outbox: Opener, database: InMemoryConversationStore
) -> None:
    inner = Switch(database)
    first = open_outbox(inner)
    await first.append("s1", turn("s1", 1))
    await first.close()
    restarted = open_outbox(inner)
    assert restarted.path == first.path and restarted.pending() == 1
    inner.down = False
    assert await restarted.flush() == 1
    assert inner.appended == ids(("s1", 1))


async def test_an_outbox_file_from_before_the_slots_is_replayed_in_order(
    open_outbox: Opener, database: InMemoryConversationStore, data_dir: Path
) -> None:
    inner = Switch(database)
    writer = open_outbox(inner)
    await writer.append("s1", turn("s1", 1))
    await writer.append("s1", turn("s1", 2))
    await writer.close()
    # The file as the earlier version wrote it: no acceptance order.
    with sqlite3.connect(data_dir / "outbox.db") as old:
        old.execute("ALTER TABLE outbox DROP COLUMN accepted")
    old.close()

    restarted = open_outbox(inner)
    assert restarted.pending() == 2
    inner.down = False
    assert await restarted.flush() == 2
    assert inner.appended == ids(("s1", 1), ("s1", 2))


async def test_a_killed_process_leaves_its_slot_adoptable(
    open_outbox: Opener,
    database: InMemoryConversationStore,
    data_dir: Path,
    processes: list[OutboxProcess],
) -> None:
    inner = Switch(database)
    here = open_outbox(inner)
    processes.append(other := OutboxProcess(data_dir))
    assert other.path == data_dir / "outbox-1.db"
    other.append("s1", 1)
    assert other.append("s2", 1) == 2
    assert await here.adopt() == 0  # held by a live process: not an orphan
    other.kill()

    assert await here.adopt() == 2
    assert (here.pending(), here.parked()) == (2, 0)
    inner.down = False
    assert await here.flush() == 2
    assert inner.appended == ids(("s1", 1), ("s2", 1))
    assert await here.adopt() == 0  # replayed and deleted: nothing to adopt twice
    assert open_outbox(inner).path == data_dir / "outbox-1.db"  # drained, so released


async def test_orphans_are_adopted_at_start_up_in_the_order_they_were_accepted(
    open_outbox: Opener, database: InMemoryConversationStore, data_dir: Path
) -> None:
    # Two processes take turns of one session; then the service restarts with one.
    inner = Switch(database)
    first, second = open_outbox(inner), open_outbox(inner)
    await first.append("s1", turn("s1", 1))
    await second.append("s1", turn("s1", 2))
    await second.append("s2", turn("s2", 1))
    await first.append("s1", turn("s1", 3))
    await second.close()
    await first.close()

    alone = open_outbox(inner)
    assert alone.path == data_dir / "outbox.db"
    assert alone.pending() == 4  # its own slot's two entries and the orphan's two
    inner.down = False
    assert await alone.flush() == 4
    assert inner.appended == ids(("s1", 1), ("s1", 2), ("s2", 1), ("s1", 3))
    assert await stored(database, "s1") == questions("s1", 1, 2, 3)


async def test_the_flush_loop_adopts_a_slot_orphaned_later(
    open_outbox: Opener,
    database: InMemoryConversationStore,
    data_dir: Path,
    processes: list[OutboxProcess],
) -> None:
    inner = Switch(database)
    here = open_outbox(inner)
    inner.down = False
    loop = asyncio.create_task(here.run(interval=0.01))
    try:
        processes.append(other := OutboxProcess(data_dir))
        other.append("s1", 1)
        other.append("s1", 2)
        other.kill()  # its replacement, if any, claims another slot
        for _ in range(1000):  # at most 10 s
            if len(inner.appended) == 2 and not here.pending():  # replayed, then deleted
                break
            await asyncio.sleep(0.01)
    finally:
        loop.cancel()
    assert inner.appended == ids(("s1", 1), ("s1", 2))
    assert here.pending() == 0


async def test_a_turn_is_not_replayed_before_an_earlier_one_held_elsewhere(
    open_outbox: Opener, database: InMemoryConversationStore
) -> None:
    first_inner, second_inner = Switch(database), Switch(database)
    first, second = open_outbox(first_inner), open_outbox(second_inner)
    await first.append("s1", turn("s1", 1))
    await second.append("s1", turn("s1", 2))
    await second.append("s2", turn("s2", 1))
    second_inner.down = False

    assert await second.flush() == 1  # s2's turn; s1's waits for the first process's
    assert (second.pending(), second_inner.appended) == (1, ids(("s2", 1)))
    first_inner.down = False
    assert await first.flush() == 1
    assert await second.flush() == 1
    assert await stored(database, "s1") == questions("s1", 1, 2)


async def test_a_turn_goes_behind_an_earlier_one_held_elsewhere(
    open_outbox: Opener, database: InMemoryConversationStore
) -> None:
    first_inner, second_inner = Switch(database), Switch(database)
    first, second = open_outbox(first_inner), open_outbox(second_inner)
    await first.append("s1", turn("s1", 1))
    second_inner.down = False
    await second.append("s1", turn("s1", 2))  # the database answers, but turn 1 waits
    await second.append("s2", turn("s2", 1))  # another session, behind it in this process
    assert second.pending() == 2 and second_inner.appended == []

    first_inner.down = False
    assert await first.flush() == 1
    assert await second.flush() == 2
    assert await stored(database, "s1") == questions("s1", 1, 2)


async def test_a_mark_a_crash_left_is_harmless_and_cleared(
    open_outbox: Opener, database: InMemoryConversationStore, data_dir: Path
) -> None:
    inner = Switch(database)
    inner.down = False
    here = open_outbox(inner)
    await open_outbox(inner).close()  # slot 1's file, empty
    mark = data_dir / "outbox.pending" / "outbox-1.db"
    mark.touch()  # as a process that died before its first entry was committed leaves it
    await here.append("s1", turn("s1", 1))
    assert (inner.appended, here.pending()) == (ids(("s1", 1)), 0)  # straight through
    assert await here.adopt() == 0
    assert not mark.exists()


async def test_pending_and_parked_count_what_this_process_holds(
    open_outbox: Opener, database: InMemoryConversationStore
) -> None:
    inner = Switch(database)
    first, second = open_outbox(inner), open_outbox(inner)
    await first.append("s1", turn("s1", 1))
    await second.append("gone", turn("gone", 1))  # no such session: parked at replay
    await second.append("s2", turn("s2", 1))
    assert (first.pending(), second.pending()) == (1, 2)
    inner.down = False
    assert await second.flush() == 1
    assert (second.pending(), second.parked()) == (0, 1)
    await second.close()

    assert await first.adopt() == 0  # its parked entry alone: counted, kept, not replayed
    assert (first.pending(), first.parked()) == (1, 1)
    assert await first.flush() == 1
    assert (first.pending(), first.parked()) == (0, 1)


# Real processes, PostgreSQL.


@pytest.fixture
def postgres() -> Iterator[tuple[str, Engine]]:
    with fresh_database() as url:
        engine = create_engine_for(url)
        prepare_schema(engine, dependency="postgres")
        try:
            yield url, engine
        finally:
            engine.dispose()


def interleaved_turns(first: OutboxProcess, second: OutboxProcess) -> list[tuple[str, int]]:
    """Turns of two sessions queued by two processes in turn; returns them in order."""
    accepted = [("s1", 1), ("s1", 2), ("s2", 1), ("s1", 3), ("s2", 2), ("s1", 4)]
    for i, (session, n) in enumerate(accepted):
        (first if i % 2 == 0 else second).append(session, n)
    return accepted


@pytest.mark.postgres
async def test_two_processes_turns_reach_postgres_once_in_order_after_one_is_killed(
    postgres: tuple[str, Engine],
    open_outbox: Opener,
    data_dir: Path,
    processes: list[OutboxProcess],
) -> None:
    url, engine = postgres
    sql = SqlConversationStore(engine, dependency="postgres")
    await sql.create_session_with_id("s1", "alice", "one")
    await sql.create_session_with_id("s2", "bob", "two")
    processes.append(first := OutboxProcess(data_dir, url))
    processes.append(second := OutboxProcess(data_dir, url))
    assert {first.path.name, second.path.name} == {"outbox.db", "outbox-1.db"}
    accepted = interleaved_turns(first, second)
    first.close()
    second.kill()

    inner = Switch(sql)
    replacement = open_outbox(inner)  # claims the first's slot, adopts the second's
    assert replacement.pending() == len(accepted)
    inner.down = False
    assert await replacement.flush() == len(accepted)
    assert inner.appended == ids(*accepted)  # each batch reached the database once
    assert await stored(sql, "s1") == questions("s1", 1, 2, 3, 4)
    assert await stored(sql, "s2") == questions("s2", 1, 2)


@pytest.mark.postgres
async def test_the_survivor_adopts_and_replays_once_in_order(
    postgres: tuple[str, Engine], data_dir: Path, processes: list[OutboxProcess]
) -> None:
    url, engine = postgres
    sql = SqlConversationStore(engine, dependency="postgres")
    await sql.create_session_with_id("s1", "alice", "one")
    await sql.create_session_with_id("s2", "bob", "two")
    processes.append(first := OutboxProcess(data_dir, url))
    processes.append(survivor := OutboxProcess(data_dir, url))
    accepted = interleaved_turns(first, survivor)
    first.close()

    assert survivor.send(op="adopt") == {"adopted": 3, "pending": 6, "parked": 0}
    survivor.send(op="up")
    flushed = survivor.send(op="flush")
    assert (flushed["flushed"], flushed["pending"]) == (6, 0)
    assert flushed["appended"] == ids(*accepted)
    assert await stored(sql, "s1") == questions("s1", 1, 2, 3, 4)
    assert await stored(sql, "s2") == questions("s2", 1, 2)
    survivor.close()
