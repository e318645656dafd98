"""An in-memory QuestionLog: the same contract as the SQL adapter, for tests and for
projects that embed the core. Lost when the process ends."""

from __future__ import annotations

from datetime import datetime

from rag_core.insights import LoggedAnswer, Vote


class InMemoryQuestionLog:
    """Implements :class:`rag_core.insights.QuestionLog` as
    :class:`adapters.sql.question_log.SqlQuestionLog` does. Never raises
    DependencyUnavailable."""

    def __init__(self) -> None:
        self._answers: dict[str, LoggedAnswer] = {}
        self._votes: dict[tuple[str, str], Vote] = {}

    async def record(self, entry: LoggedAnswer) -> None:
        self._answers.setdefault(entry.id, entry)

    async def vote(self, vote: Vote) -> bool:
        if vote.answer_id not in self._answers:
            return False
        self._votes[(vote.answer_id, vote.reader)] = vote
        return True

    async def answers(self, since: datetime) -> list[LoggedAnswer]:
        kept = [a for a in self._answers.values() if a.asked_at >= since]
        return sorted(kept, key=lambda a: (a.asked_at, a.id))

    async def votes(self, since: datetime) -> list[Vote]:
        return [
            v
            for (answer_id, _), v in self._votes.items()
            if self._answers[answer_id].asked_at >= since
        ]

    async def purge(self, before: datetime) -> int:
        old = {i for i, a in self._answers.items() if a.asked_at < before}
        for answer_id in old:
            del self._answers[answer_id]
        self._votes = {k: v for k, v in self._votes.items() if k[0] not in old}
        return len(old)

    async def probe(self) -> None:
        return None
