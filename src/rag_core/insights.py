"""What readers ask and what they think of the answers: the question log, answer
feedback, and the insights an author reads from them (coverage gaps, down-voted
answers, pages cited and never cited, volume per day).

Private by default: a logged answer keeps the question, its time, how it was
answered, whether it was uncertain, the pages it cited and the words the docs
lacked; the asker's user id only when the operator turns identities on. A vote
keeps a reader key (a keyed hash of the answer and the reader, so one reader votes
once per answer and can change the vote) and never the reader's id or address.
Entries older than the retention are purged with their votes.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

import attrs

from rag_core.answers import Answer
from rag_core.errors import DependencyUnavailable, InvalidInput, NotFound
from rag_core.gaps import group, shared_terms
from rag_core.ports import Clock, Embedder

log = logging.getLogger(__name__)

MAX_COMMENT = 1000
MAX_WRITING = 32  # background log writes in flight at once
EMBED_BATCH = 64
PURGE_INTERVAL = 3600.0  # seconds
MAX_GROUPED = 2000  # the most recent uncertain questions a report groups
GAP_EXAMPLES = 5
TOP = 10


class Rating(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@attrs.frozen(slots=True)
class LoggedAnswer:
    """One answer as the log keeps it; ``id`` is the answer's id."""

    id: str
    asked_at: datetime
    question: str
    mode: str
    uncertain: bool
    pages: tuple[str, ...] = ()  # the cited pages' routes, in citation order
    missing_terms: tuple[str, ...] = ()
    user_id: str | None = None  # only with identities logged


@attrs.frozen(slots=True)
class Vote:
    """A reader's rating of one answer: one per (answer_id, reader), replaced by a new one."""

    answer_id: str
    reader: str
    rating: Rating
    comment: str
    at: datetime


class QuestionLog(Protocol):
    """Where logged answers and their votes are kept."""

    async def record(self, entry: LoggedAnswer) -> None:
        """Keep ``entry`` (idempotent by id)."""
        ...

    async def vote(self, vote: Vote) -> bool:
        """Keep ``vote``, replacing the reader's earlier vote on that answer;
        False (and nothing kept) when no answer with that id is logged."""
        ...

    async def answers(self, since: datetime) -> list[LoggedAnswer]:
        """The answers asked at or after ``since``, oldest first."""
        ...

    async def votes(self, since: datetime) -> list[Vote]:
        """The votes on answers asked at or after ``since``."""
        ...

    async def purge(self, before: datetime) -> int:
        """Delete the answers asked before ``before`` and their votes; how many answers."""
        ...


@attrs.frozen(slots=True)
class Gap:
    """Uncertain questions about one thing the docs do not cover."""

    size: int
    terms: tuple[str, ...]  # the words most of them use
    examples: tuple[str, ...]


@attrs.frozen(slots=True)
class Disliked:
    """An answer readers voted down, with their comments."""

    answer: LoggedAnswer
    down: int
    up: int
    comments: tuple[str, ...]


@attrs.frozen(slots=True)
class Day:
    day: date
    questions: int
    uncertain: int


@attrs.frozen(slots=True)
class Report:
    since: datetime
    questions: int
    uncertain: int
    gaps: tuple[Gap, ...]
    disliked: tuple[Disliked, ...]
    most_cited: tuple[tuple[str, int], ...]
    never_cited: tuple[str, ...]
    days: tuple[Day, ...]
    votes_up: int
    votes_down: int


class Insights:
    """Logs answers, takes votes and reports on them.

    ``reader_secret`` keys the reader hash of votes; ``log_identities`` keeps the
    asker's user id with a logged answer (off by default); ``retention`` is how long
    entries are kept. Raises ValueError for an empty secret or a retention under a day.
    """

    def __init__(
        self,
        log: QuestionLog,
        clock: Clock,
        *,
        reader_secret: str,
        log_identities: bool = False,
        retention: timedelta = timedelta(days=90),
        writer: QuestionLog | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        if not reader_secret:
            raise ValueError("reader_secret must not be empty")
        if retention < timedelta(days=1):
            raise ValueError("retention must be at least a day")
        self._log = log
        self._writer = writer or log
        self._embedder = embedder
        self._clock = clock
        self._secret = reader_secret.encode()
        self._log_identities = log_identities
        self.retention = retention
        self._writing: set[asyncio.Task[None]] = set()
        self.dropped = 0  # answers not logged: too many writes in flight, or the log failed
        # Told of each answer (its mode, whether uncertain) and each vote (its rating):
        # the HTTP app counts them in /metrics.
        self.observe_answer: Callable[[str, bool], None] | None = None
        self.observe_vote: Callable[[str], None] | None = None

    async def record(
        self, answer_id: str, question: str, answer: Answer, *, user_id: str | None = None
    ) -> None:
        """Log one answer under ``answer_id`` (through ``writer``, when given: the
        background writes of :meth:`record_soon` must not trip the log's circuit)."""
        pages = tuple(dict.fromkeys(c.route for c in answer.citations if c.route))
        await self._writer.record(
            LoggedAnswer(
                id=answer_id,
                asked_at=self._clock.now(),
                question=question,
                mode=answer.mode.value,
                uncertain=answer.uncertain,
                pages=pages,
                missing_terms=answer.missing_terms,
                user_id=user_id if self._log_identities else None,
            )
        )

    def record_soon(
        self, answer_id: str, question: str, answer: Answer, *, user_id: str | None = None
    ) -> None:
        """:meth:`record` in the background, so logging never delays an answer; with
        ``MAX_WRITING`` writes in flight (a database that hangs), the entry is dropped
        and counted instead. A failed write is counted and logged, never raised."""
        if self.observe_answer is not None:
            self.observe_answer(answer.mode.value, answer.uncertain)
        if len(self._writing) >= MAX_WRITING:
            self.dropped += 1
            return
        task = asyncio.create_task(self._write(answer_id, question, answer, user_id))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(
        self, answer_id: str, question: str, answer: Answer, user_id: str | None
    ) -> None:
        try:
            await self.record(answer_id, question, answer, user_id=user_id)
        except DependencyUnavailable as exc:
            self.dropped += 1
            log.warning("question log unavailable (%s): an answer was not logged", exc.reason)

    async def settle(self) -> None:
        """Wait for the background writes in flight (a report, and shutdown, do)."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    def reader_key(self, answer_id: str, reader: str) -> str:
        """What a vote keeps of its reader (a user id, or the client's address)."""
        message = f"{answer_id}\n{reader}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    async def vote(self, answer_id: str, reader: str, rating: Rating, comment: str = "") -> None:
        """``reader``'s rating of the answer (replacing their earlier one). Raises
        InvalidInput for a comment over MAX_COMMENT characters, NotFound for an
        answer that is not logged (or no longer)."""
        comment = " ".join(comment.split())
        if len(comment) > MAX_COMMENT:
            raise InvalidInput(f"comment is longer than {MAX_COMMENT} characters")
        vote = Vote(
            answer_id, self.reader_key(answer_id, reader), rating, comment, self._clock.now()
        )
        await self.settle()  # the answer may still be on its way to the log
        if not await self._log.vote(vote):
            raise NotFound("no such answer")
        if self.observe_vote is not None:
            self.observe_vote(rating.value)

    async def purge(self) -> int:
        """Delete what is older than the retention; how many answers went."""
        return await self._log.purge(self._clock.now() - self.retention)

    async def _meanings(self, questions: list[str]) -> list[tuple[float, ...]] | None:
        """The questions' embeddings when an embedder is configured (so paraphrases
        that share no word group too), in batches; None without one or when it fails
        (the grouping is then lexical only)."""
        if self._embedder is None or not questions:
            return None
        vectors: list[tuple[float, ...]] = []
        try:
            for start in range(0, len(questions), EMBED_BATCH):
                vectors += await self._embedder.embed(questions[start : start + EMBED_BATCH])
        except DependencyUnavailable as exc:
            log.warning("embedder unavailable for the insights (%s): lexical grouping", exc.reason)
            return None
        return vectors

    async def run(self, interval: float = PURGE_INTERVAL) -> None:
        """Purge now and every ``interval`` seconds, until cancelled; a log that is
        down is tried again at the next round."""
        while True:
            try:
                purged = await self.purge()
                if purged:
                    log.info("purged %d logged answers older than %s", purged, self.retention)
            except DependencyUnavailable as exc:
                log.warning("question log unavailable for the purge (%s)", exc.reason)
            await asyncio.sleep(interval)

    async def report(self, since: datetime, pages: Sequence[str] = ()) -> Report:
        """Insights over the answers asked since ``since``; ``pages`` are every
        page the docs have (for the ones never cited)."""
        await self.settle()
        answers = await self._log.answers(since)
        votes = await self._log.votes(since)
        uncertain = [a for a in answers if a.uncertain][-MAX_GROUPED:]
        texts = [" ".join(a.missing_terms) or a.question for a in uncertain]
        vectors = await self._meanings([a.question for a in uncertain])
        gaps = []
        for members in group(texts, vectors):
            questions = [uncertain[i].question for i in members]
            examples = tuple(dict.fromkeys(questions))[:GAP_EXAMPLES]
            gaps.append(Gap(len(members), tuple(shared_terms(questions)), examples))
        cited = Counter(page for a in answers for page in a.pages)
        return Report(
            since=since,
            questions=len(answers),
            uncertain=sum(a.uncertain for a in answers),
            gaps=tuple(gaps),
            disliked=_disliked(answers, votes),
            most_cited=tuple(cited.most_common(TOP)),
            never_cited=tuple(sorted(set(pages) - set(cited))),
            days=_days(answers),
            votes_up=sum(v.rating is Rating.UP for v in votes),
            votes_down=sum(v.rating is Rating.DOWN for v in votes),
        )


def _disliked(answers: Sequence[LoggedAnswer], votes: Sequence[Vote]) -> tuple[Disliked, ...]:
    by_id = {a.id: a for a in answers}
    tally: dict[str, list[Vote]] = {}
    for vote in votes:
        if vote.answer_id in by_id:
            tally.setdefault(vote.answer_id, []).append(vote)
    disliked = []
    for answer_id, cast in tally.items():
        down = [v for v in cast if v.rating is Rating.DOWN]
        if down:
            comments = tuple(v.comment for v in down if v.comment)
            disliked.append(Disliked(by_id[answer_id], len(down), len(cast) - len(down), comments))
    disliked.sort(key=lambda d: (-d.down, d.up, d.answer.asked_at))
    return tuple(disliked[:TOP])


def _days(answers: Sequence[LoggedAnswer]) -> tuple[Day, ...]:
    total: Counter[date] = Counter()
    unsure: Counter[date] = Counter()
    for answer in answers:
        day = answer.asked_at.date()
        total[day] += 1
        unsure[day] += answer.uncertain
    return tuple(Day(day, total[day], unsure[day]) for day in sorted(total))
