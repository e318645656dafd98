"""Searches that queue up together run as one engine call; each caller gets its own
answer, one bad request fails alone, and a caller that stops waiting harms no one."""

from __future__ import annotations

import asyncio

import pytest

from adapters.qdrant_edge.batching import Batcher


class Engine:
    """Squares numbers, a batch at a time; refuses negative ones."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []

    async def run(self, requests: list[int]) -> list[int]:
        self.batches.append(list(requests))
        await asyncio.sleep(self.delay)
        if any(r < 0 for r in requests):
            raise ValueError("negative")
        return [r * r for r in requests]


async def test_requests_waiting_together_share_a_batch_and_get_their_own_answer() -> None:
    engine = Engine()
    batcher = Batcher(engine.run, max_batch=8)
    answers = await asyncio.gather(*(batcher.submit(n) for n in range(20)))
    assert answers == [n * n for n in range(20)]
    # all 20 queued before the worker first ran: 8 at a time
    assert [len(b) for b in engine.batches] == [8, 8, 4]
    assert sorted(n for b in engine.batches for n in b) == list(range(20))


async def test_a_lone_request_does_not_wait_for_company() -> None:
    engine = Engine(delay=0)
    batcher = Batcher(engine.run)
    assert await batcher.submit(3) == 9
    assert await batcher.submit(4) == 16
    assert engine.batches == [[3], [4]]


async def test_a_bad_request_fails_alone() -> None:
    engine = Engine()
    batcher = Batcher(engine.run, max_batch=8)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)  # the first batch starts; the next ones queue behind it
    results = await asyncio.gather(*(batcher.submit(n) for n in (2, -3, 4)), return_exceptions=True)
    assert await first == 1
    assert results[0] == 4 and results[2] == 16
    assert isinstance(results[1], ValueError)
    assert engine.batches[1] == [2, -3, 4]  # tried together, then one by one
    assert engine.batches[2:] == [[2], [-3], [4]]


async def test_a_caller_that_stops_waiting_harms_no_one() -> None:
    engine = Engine()
    batcher = Batcher(engine.run, max_batch=8)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    gone = asyncio.create_task(batcher.submit(2))
    stays = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == 1
    assert await stays == 9
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert [2] not in engine.batches and engine.batches[1] == [3]  # skipped before it ran


async def test_a_wrong_number_of_answers_fails_the_callers_instead_of_hanging() -> None:
    async def short(requests: list[int]) -> list[int]:
        return requests[:-1]

    batcher = Batcher(short)
    with pytest.raises(RuntimeError, match="0 results for 1 requests"):
        await asyncio.wait_for(batcher.submit(1), timeout=5)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Engine().run, max_batch=0)
