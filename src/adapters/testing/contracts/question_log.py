"""The QuestionLog contract, run against every adapter.

A subclass provides the ``log`` fixture: an empty log.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from rag_core.insights import LoggedAnswer, QuestionLog, Rating, Vote

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def entry(n: int, *, days: int = 0, **changes: object) -> LoggedAnswer:
    values: dict[str, object] = {
        "id": f"answer-{n}",
        "asked_at": T0 + timedelta(days=days, minutes=n),
        "question": f"What is topic {n}? ٹاپک 🤖",
        "mode": "extractive",
        "uncertain": n % 2 == 0,
        "pages": ("/docs/topics", "/docs/nodes"),
        "missing_terms": ("kubernet", "pod"),
        "user_id": None,
    }
    values.update(changes)
    return LoggedAnswer(**values)  # type: ignore[arg-type]


def vote(answer: str, reader: str, rating: Rating = Rating.DOWN, comment: str = "") -> Vote:
    return Vote(answer, reader, rating, comment, T0 + timedelta(hours=1))


class QuestionLogContract:
    @pytest.fixture
    def log(self) -> QuestionLog:
        raise NotImplementedError("a contract subclass provides log")

    async def test_entries_round_trip_exactly_oldest_first(self, log: QuestionLog) -> None:
        entries = [entry(3), entry(1, user_id="user-1"), entry(2, pages=(), missing_terms=())]
        for e in entries:
            await log.record(e)
        assert await log.answers(T0) == sorted(entries, key=lambda e: e.asked_at)

    async def test_answers_since_a_time(self, log: QuestionLog) -> None:
        await log.record(entry(1))
        await log.record(entry(2, days=10))
        assert [e.id for e in await log.answers(T0 + timedelta(days=5))] == ["answer-2"]

    async def test_recording_an_id_twice_keeps_the_first(self, log: QuestionLog) -> None:
        await log.record(entry(1))
        await log.record(entry(1, question="changed"))
        [kept] = await log.answers(T0)
        assert kept.question == entry(1).question

    async def test_a_vote_on_an_unknown_answer_is_refused(self, log: QuestionLog) -> None:
        assert await log.vote(vote("answer-9", "reader")) is False
        assert await log.votes(T0) == []

    async def test_one_vote_per_reader_per_answer_the_last_one_counts(
        self, log: QuestionLog
    ) -> None:
        await log.record(entry(1))
        await log.record(entry(2))
        assert await log.vote(vote("answer-1", "a", Rating.DOWN, "wrong page"))
        assert await log.vote(vote("answer-1", "a", Rating.UP))
        assert await log.vote(vote("answer-1", "b", Rating.DOWN, "تبصرہ"))
        assert await log.vote(vote("answer-2", "a"))
        cast = sorted((v.answer_id, v.reader, v.rating, v.comment) for v in await log.votes(T0))
        assert cast == [
            ("answer-1", "a", Rating.UP, ""),
            ("answer-1", "b", Rating.DOWN, "تبصرہ"),
            ("answer-2", "a", Rating.DOWN, ""),
        ]

    async def test_concurrent_votes_of_one_reader_leave_one(self, log: QuestionLog) -> None:
        await log.record(entry(1))
        ratings = [Rating.UP, Rating.DOWN] * 6
        await asyncio.gather(*(log.vote(vote("answer-1", "a", r)) for r in ratings))
        assert len(await log.votes(T0)) == 1

    async def test_purge_removes_old_answers_with_their_votes(self, log: QuestionLog) -> None:
        await log.record(entry(1))
        await log.record(entry(2, days=30))
        await log.vote(vote("answer-1", "a"))
        await log.vote(vote("answer-2", "a"))
        assert await log.purge(T0 + timedelta(days=20)) == 1
        assert [e.id for e in await log.answers(T0)] == ["answer-2"]
        assert [v.answer_id for v in await log.votes(T0)] == ["answer-2"]
        assert await log.purge(T0 + timedelta(days=20)) == 0
