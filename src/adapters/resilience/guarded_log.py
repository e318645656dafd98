"""The question log behind the database breaker: it shares the database with the
conversations, so an outage fails fast here too and logging an answer never waits."""

from __future__ import annotations

from datetime import datetime

from adapters.resilience.breaker import Breaker
from rag_core.insights import LoggedAnswer, QuestionLog, Vote


class GuardedQuestionLog:
    """A :class:`~rag_core.insights.QuestionLog` whose calls go through ``breaker``."""

    def __init__(self, inner: QuestionLog, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    async def record(self, entry: LoggedAnswer) -> None:
        await self._breaker.call(lambda: self._inner.record(entry))

    async def vote(self, vote: Vote) -> bool:
        return await self._breaker.call(lambda: self._inner.vote(vote))

    async def answers(self, since: datetime) -> list[LoggedAnswer]:
        return await self._breaker.call(lambda: self._inner.answers(since))

    async def votes(self, since: datetime) -> list[Vote]:
        return await self._breaker.call(lambda: self._inner.votes(since))

    async def purge(self, before: datetime) -> int:
        return await self._breaker.call(lambda: self._inner.purge(before))
