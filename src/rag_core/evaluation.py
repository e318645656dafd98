"""Measuring answer quality on labelled questions: hit@k, MRR, context recall,
answer accuracy, "nothing found" and answers that quote a question or a heading.

Pure: the entrypoints run the questions through a container (or a baseline
through its own search) and hand the outcomes here to be scored. Labels are
JSON lines::

    {"id": "q1", "question": "What is a node?", "pages": ["/docs/week3/nodes"],
     "answers": ["an executable that uses ROS 2"], "kind": "definition", "split": "dev"}

``pages`` are the site routes that answer the question (empty: the docs cannot
answer it); ``answers`` are phrases of the docs' own answering sentence, any one
of which counts. Matching is on normalised text (see :func:`normalise`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import attrs

from rag_core.errors import InvalidInput
from rag_core.prose import clean

_NON_WORD = re.compile(r"[\W_]+")
_MARKER = re.compile(r"\s*\[\d+\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalise(text: str) -> str:
    """Casefolded words of ``text`` with Markdown inline syntax removed, one space apart."""
    return " ".join(_NON_WORD.sub(" ", clean(text).casefold()).split())


def contains_any(text: str, phrases: Sequence[str]) -> bool:
    """Whether normalised ``text`` contains one of the normalised ``phrases`` as whole words."""
    haystack = f" {normalise(text)} "
    return any(f" {normalise(p)} " in haystack for p in phrases if normalise(p))


@attrs.frozen(slots=True)
class EvalQuestion:
    id: str
    question: str
    pages: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    kind: str = ""
    split: str = "dev"

    @property
    def answerable(self) -> bool:
        return bool(self.pages)


def load_questions(lines: Iterable[str]) -> list[EvalQuestion]:
    """Parse JSON lines (blank lines skipped); raises InvalidInput naming the bad line."""
    questions: list[EvalQuestion] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question = EvalQuestion(
                id=str(item.get("id") or f"q{number}"),
                question=str(item["question"]),
                pages=tuple(str(p) for p in item.get("pages", ())),
                answers=tuple(str(a) for a in item.get("answers", ())),
                kind=str(item.get("kind", "")),
                split=str(item.get("split", "dev")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"line {number}: expected a JSON object with a 'question' ({exc})"
            ) from exc
        if not question.question.strip():
            raise InvalidInput(f"line {number}: the question is empty")
        questions.append(question)
    return questions


@attrs.frozen(slots=True)
class EvalOutcome:
    """What a system did with one question: the pages it ranked (best first, one
    entry per retrieved passage), the context a model would read, and its answer."""

    question: EvalQuestion
    ranked_pages: tuple[str, ...]
    context: str = ""
    answer: str = ""
    nothing_found: bool = False
    headings: tuple[str, ...] = ()  # headings of the retrieved passages
    uncertain: bool = False  # the answer said it does not stand on what was found

    def rank(self) -> int | None:
        """1-based rank of the first expected page among distinct ranked pages."""
        for rank, page in enumerate(dict.fromkeys(self.ranked_pages), start=1):
            if page in self.question.pages:
                return rank
        return None

    @property
    def quotes_question_or_heading(self) -> bool:
        """The answer quotes a question (a sentence ending in ``?``) or a heading."""
        headings = {normalise(h) for h in self.headings} - {""}
        for sentence in _SENTENCE_END.split(_MARKER.sub("", self.answer)):
            text = sentence.strip()
            if text.endswith("?") or normalise(text) in headings:
                return True
        return False


def score(outcomes: Sequence[EvalOutcome], k: int = 5) -> dict[str, float | int]:
    """The figures over ``outcomes``: retrieval and answer metrics over answerable
    questions; ``nothing_found_unanswerable`` over the others."""
    answerable = [o for o in outcomes if o.question.answerable]
    others = [o for o in outcomes if not o.question.answerable]
    ranks = [o.rank() for o in answerable]
    n = len(answerable) or 1

    def hit(limit: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= limit) / n

    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "hit@1": hit(1),
        "hit@3": hit(3),
        f"hit@{k}": hit(k),
        "mrr": sum(1 / r for r in ranks if r is not None and r <= k) / n,
        "context_recall": sum(contains_any(o.context, o.question.answers) for o in answerable) / n,
        "answer_accuracy": sum(contains_any(o.answer, o.question.answers) for o in answerable) / n,
        "nothing_found": sum(o.nothing_found for o in answerable),
        "quotes_question_or_heading": sum(o.quotes_question_or_heading for o in outcomes),
        "nothing_found_unanswerable": sum(o.nothing_found for o in others),
        "unanswerable": len(others),
        "uncertain": sum(o.uncertain for o in outcomes),
        "uncertain_answerable": sum(o.uncertain for o in answerable),
        "uncertain_unanswerable": sum(o.uncertain for o in others),
    }


def report(outcomes: Sequence[EvalOutcome], k: int = 5) -> dict[str, dict[str, float | int]]:
    """:func:`score` over all outcomes, per split and per question kind."""
    groups: dict[str, list[EvalOutcome]] = {"all": list(outcomes)}
    for outcome in outcomes:
        groups.setdefault(f"split:{outcome.question.split}", []).append(outcome)
        if outcome.question.kind:
            groups.setdefault(f"kind:{outcome.question.kind}", []).append(outcome)
    return {name: score(group, k) for name, group in groups.items()}


def table(figures: dict[str, dict[str, float | int]], k: int = 5) -> str:
    """The report as a fixed-width text table, one row per group."""
    columns = (
        "questions",
        "hit@1",
        "hit@3",
        f"hit@{k}",
        "mrr",
        "context_recall",
        "answer_accuracy",
        "nothing_found",
        "quotes_question_or_heading",
        "uncertain",
    )
    names = {"context_recall": "ctx_recall", "answer_accuracy": "answer_acc"}
    names |= {"nothing_found": "nothing", "quotes_question_or_heading": "quotes"}
    header = ["group".ljust(20), *(names.get(c, c).rjust(10) for c in columns)]
    rows = [" ".join(header)]
    for group, values in figures.items():
        cells = [group[:20].ljust(20)]
        for column in columns:
            value = values.get(column, 0)
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            cells.append(text.rjust(10))
        rows.append(" ".join(cells))
    return "\n".join(rows)
