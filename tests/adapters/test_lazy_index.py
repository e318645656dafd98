"""LazyIndex: preparation deferred to the first call that reaches the index, once,
shared by concurrent callers, retried after a failure, started by a probe."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.lazy_index import LazyIndex
from adapters.memory.index import InMemoryIndex
from rag_core.documents import SparseVector
from rag_core.errors import DependencyUnavailable, IndexMismatch
from rag_core.ports import SearchQuery

QUERY = SearchQuery(sparse=SparseVector(indices=(1,), values=(1.0,)))
pytestmark = pytest.mark.timeout(10)


class Preparation:
    """A scripted ``prepare``: fails while ``down``, takes ``seconds``, counts its runs."""

    def __init__(self, index: InMemoryIndex, *, down: bool = False, seconds: float = 0.0) -> None:
        self.index = index
        self.down = down
        self.seconds = seconds
        self.runs = 0
        self.completed = 0

    async def __call__(self) -> None:
        self.runs += 1
        await asyncio.sleep(self.seconds)
        if self.down:
            raise DependencyUnavailable("qdrant", "ConnectError")
        await self.index.prepare(None)
        self.completed += 1


class Unreachable(InMemoryIndex):
    down = True

    async def probe(self) -> None:
        if self.down:
            raise DependencyUnavailable("qdrant", "ConnectError")


async def test_start_prepares_at_once_when_reachable() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner)
    index = LazyIndex(inner, preparation)
    assert await index.start() is True
    assert index.prepared and preparation.completed == 1
    await index.search(QUERY)
    await index.count()
    assert preparation.runs == 1  # never again once prepared


async def test_unreachable_start_logs_one_plain_line_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = InMemoryIndex()
    index = LazyIndex(inner, Preparation(inner, down=True), target="qdrant at 10.0.0.9:6333")
    with caplog.at_level(logging.INFO):
        assert await index.start() is False
        for _ in range(3):
            with pytest.raises(DependencyUnavailable):
                await index.search(QUERY)
    assert not index.prepared
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage().startswith(
        "qdrant at 10.0.0.9:6333 could not be reached at start-up (ConnectError)"
    )
    assert record.exc_info is None


async def test_other_errors_at_start_are_raised() -> None:
    inner = InMemoryIndex()

    async def mismatch() -> None:
        raise IndexMismatch("laid out by someone else")

    with pytest.raises(IndexMismatch):
        await LazyIndex(inner, mismatch).start()


async def test_concurrent_first_calls_share_one_preparation() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner, down=True)
    index = LazyIndex(inner, preparation)
    await index.start()
    preparation.down, preparation.seconds = False, 0.05
    results = await asyncio.gather(*(index.search(QUERY) for _ in range(20)))
    assert results == [[]] * 20
    assert preparation.runs == 2 and preparation.completed == 1  # start-up's, then one


async def test_a_failed_attempt_fails_its_callers_and_the_next_call_tries_again() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner, down=True, seconds=0.05)
    index = LazyIndex(inner, preparation)
    outcomes = await asyncio.gather(*(index.count() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(o, DependencyUnavailable) for o in outcomes)
    assert preparation.runs == 1  # one attempt for the five
    preparation.down = False
    assert await index.count() == 0
    assert preparation.runs == 2 and index.prepared


async def test_a_caller_giving_up_does_not_cancel_the_preparation() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner, seconds=0.2)
    index = LazyIndex(inner, preparation)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await index.search(QUERY)
    await index.wait_prepared()
    assert preparation.runs == 1 and preparation.completed == 1


async def test_probe_prepares_when_the_index_answers_again() -> None:
    inner = Unreachable()
    preparation = Preparation(inner, down=True)
    index = LazyIndex(inner, preparation)
    await index.start()
    with pytest.raises(DependencyUnavailable):
        await index.probe()  # unreachable: not even tried
    assert preparation.runs == 1
    inner.down = preparation.down = False
    await index.probe()  # reachable: prepares, with no other traffic
    assert index.prepared and preparation.completed == 1
    await index.probe()
    assert preparation.runs == 2


async def test_probe_fails_while_a_long_preparation_runs() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner, seconds=0.3)
    index = LazyIndex(inner, preparation, probe_wait=0.05)
    with pytest.raises(DependencyUnavailable) as caught:
        await index.probe()
    assert caught.value.reason == "preparing"
    await index.wait_prepared()
    await index.probe()


async def test_close_cancels_a_pending_preparation() -> None:
    inner = InMemoryIndex()
    preparation = Preparation(inner, seconds=10)
    index = LazyIndex(inner, preparation)
    waiting = asyncio.create_task(index.search(QUERY))
    await asyncio.sleep(0.01)
    await index.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert preparation.completed == 0
