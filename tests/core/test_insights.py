"""Insights: the question log, votes and the author's report (in-memory log)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.question_log import InMemoryQuestionLog
from rag_core.answers import Answer, AnswerMode, Citation
from rag_core.errors import DependencyUnavailable, InvalidInput, NotFound
from rag_core.insights import MAX_COMMENT, MAX_WRITING, Insights, LoggedAnswer, Rating
from rag_core.testing import FakeClock

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def cited(*routes: str, uncertain: bool = False, missing: tuple[str, ...] = ()) -> Answer:
    citations = tuple(
        Citation(n, "T", route, (), "s", 1.0, f"c{n}", "d") for n, route in enumerate(routes, 1)
    )
    return Answer(
        "text", AnswerMode.EXTRACTIVE, citations, uncertain=uncertain, missing_terms=missing
    )


def make(**options: object) -> tuple[Insights, InMemoryQuestionLog, FakeClock]:
    log, clock = InMemoryQuestionLog(), FakeClock(T0)
    return Insights(log, clock, reader_secret="s3cret", **options), log, clock  # type: ignore[arg-type]


async def test_a_logged_answer_keeps_no_identity_by_default() -> None:
    insights, log, _ = make()
    await insights.record("a1", "What is a topic?", cited("/docs/t", "/docs/t"), user_id="u1")
    [entry] = await log.answers(T0)
    assert (entry.id, entry.question, entry.mode, entry.pages) == (
        "a1",
        "What is a topic?",
        "extractive",
        ("/docs/t",),
    )
    assert entry.user_id is None
    identified, log, _ = make(log_identities=True)
    await identified.record("a2", "q", cited(), user_id="u1")
    assert (await log.answers(T0))[0].user_id == "u1"


async def test_a_vote_keeps_a_reader_key_never_the_reader() -> None:
    insights, log, _ = make()
    await insights.record("a1", "q", cited())
    await insights.vote("a1", "203.0.113.9", Rating.DOWN, "  wrong\n page ")
    [vote] = await log.votes(T0)
    assert vote.comment == "wrong page"
    assert "203.0.113.9" not in vote.reader and len(vote.reader) == 32
    assert vote.reader == insights.reader_key("a1", "203.0.113.9")
    assert insights.reader_key("a2", "203.0.113.9") != vote.reader  # not linkable across answers


async def test_one_reader_one_vote_changeable() -> None:
    insights, log, _ = make()
    await insights.record("a1", "q", cited())
    await insights.vote("a1", "reader", Rating.DOWN)
    await insights.vote("a1", "reader", Rating.UP)
    await insights.vote("a1", "other", Rating.DOWN)
    assert sorted(v.rating for v in await log.votes(T0)) == [Rating.DOWN, Rating.UP]


async def test_bad_votes_are_refused() -> None:
    insights, _, _ = make()
    with pytest.raises(NotFound):
        await insights.vote("nope", "reader", Rating.UP)
    await insights.record("a1", "q", cited())
    with pytest.raises(InvalidInput):
        await insights.vote("a1", "reader", Rating.UP, "x" * (MAX_COMMENT + 1))


async def test_purge_keeps_the_retention() -> None:
    insights, log, clock = make(retention=timedelta(days=90))
    await insights.record("old", "q", cited())
    clock.seconds = timedelta(days=60).total_seconds()
    await insights.record("new", "q", cited())
    clock.seconds = timedelta(days=91).total_seconds()
    assert await insights.purge() == 1
    assert [a.id for a in await log.answers(T0)] == ["new"]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Insights(InMemoryQuestionLog(), FakeClock(T0), reader_secret="")
    with pytest.raises(ValueError):
        Insights(
            InMemoryQuestionLog(), FakeClock(T0), reader_secret="s", retention=timedelta(hours=1)
        )


async def test_the_report() -> None:
    insights, _, clock = make()
    asked = [
        ("How long should I boil fresh pasta?", cited(uncertain=True, missing=("boil", "pasta"))),
        ("Boiling time for pasta?", cited(uncertain=True, missing=("boil", "pasta"))),
        ("Can I run nodes in Kubernetes?", cited("/docs/n", uncertain=True, missing=("kubernet",))),
        ("What is a topic?", cited("/docs/t", "/docs/n")),
        ("What is a node?", cited("/docs/n")),
    ]
    for n, (question, answer) in enumerate(asked):
        clock.seconds = timedelta(days=n // 3, hours=n).total_seconds()
        await insights.record(f"a{n}", question, answer)
    await insights.vote("a3", "r1", Rating.DOWN, "not what I asked")
    await insights.vote("a3", "r2", Rating.UP)
    await insights.vote("a4", "r1", Rating.UP)
    report = await insights.report(T0, pages=["/docs/t", "/docs/n", "/docs/gazebo"])
    assert (report.questions, report.uncertain) == (5, 3)
    [pasta, kubernetes] = report.gaps
    assert pasta.size == 2 and "pasta" in pasta.terms
    assert pasta.examples == ("How long should I boil fresh pasta?", "Boiling time for pasta?")
    assert kubernetes.examples == ("Can I run nodes in Kubernetes?",)
    [disliked] = report.disliked
    assert (disliked.answer.id, disliked.down, disliked.up) == ("a3", 1, 1)
    assert disliked.comments == ("not what I asked",)
    assert report.most_cited == (("/docs/n", 3), ("/docs/t", 1))
    assert report.never_cited == ("/docs/gazebo",)
    assert [(d.day.day, d.questions, d.uncertain) for d in report.days] == [(1, 3, 3), (2, 2, 0)]
    assert (report.votes_up, report.votes_down) == (2, 1)
    later = await insights.report(T0 + timedelta(days=1))
    assert later.questions == 2


class DownLog(InMemoryQuestionLog):
    async def record(self, entry: LoggedAnswer) -> None:
        raise DependencyUnavailable("database", "ConnectError")


class HungLog(InMemoryQuestionLog):
    async def record(self, entry: LoggedAnswer) -> None:
        await asyncio.sleep(3600)


async def test_logging_in_the_background_never_raises_and_is_bounded() -> None:
    down = Insights(DownLog(), FakeClock(T0), reader_secret="s")
    down.record_soon("a1", "q", cited())
    await down.settle()
    assert down.dropped == 1
    hung = Insights(HungLog(), FakeClock(T0), reader_secret="s")
    for n in range(MAX_WRITING + 5):
        hung.record_soon(f"a{n}", "q", cited())
    assert hung.dropped == 5  # the rest wait on the hung log, the answers did not
    for task in list(hung._writing):
        task.cancel()
    await asyncio.gather(*hung._writing, return_exceptions=True)


async def test_a_report_sees_the_answers_logged_in_the_background() -> None:
    insights, _, _ = make()
    insights.record_soon("a1", "What is a topic?", cited("/docs/t"))
    assert (await insights.report(T0)).questions == 1


class MeaningEmbedder:
    """Cooking questions point one way, everything else another."""

    model, dimension = "meaning", 2

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        if self.fail:
            raise DependencyUnavailable("openai", "ConnectError")
        cooking = ("pasta", "spaghetti", "noodles")
        return [(1.0, 0.0) if any(w in t for w in cooking) else (0.0, 1.0) for t in texts]


@pytest.mark.parametrize(("fail", "groups"), [(False, 1), (True, 2)])
async def test_with_an_embedder_paraphrases_sharing_no_word_group_together(
    fail: bool, groups: int
) -> None:
    log = InMemoryQuestionLog()
    insights = Insights(log, FakeClock(T0), reader_secret="s", embedder=MeaningEmbedder(fail))
    for n, question in enumerate(["How long do I boil pasta?", "Cooking time for spaghetti?"]):
        await insights.record(f"a{n}", question, cited(uncertain=True))
    assert len((await insights.report(T0)).gaps) == groups
