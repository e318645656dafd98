"""`rag-backend eval`: run labelled questions through the real answer path and score them.

For each question: the retrieved sources (their pages, best first), the context a
model would read (every numbered source's text), and the answer the service would
give (generated with a chat model, else extractive). Scored by
:mod:`rag_core.evaluation`; a table on stdout, the figures (and, per question,
what happened) as JSON on request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from adapters.settings import Settings
from entrypoints.bootstrap import build_container
from entrypoints.container import Container
from rag_core.errors import InvalidInput
from rag_core.evaluation import EvalOutcome, EvalQuestion, load_questions, report, table
from rag_core.extractive import NOTHING_FOUND


def add_parser(commands: Any) -> None:
    """Register the ``eval`` command on the CLI's sub-parsers."""
    command = commands.add_parser(
        "eval", help="score answers to labelled questions (JSON lines): hit@k, MRR, accuracy"
    )
    command.add_argument("questions", type=Path, help="JSON lines: id, question, pages, answers")
    command.add_argument("--k", type=int, default=5, help="cut-off for hit@k and MRR (default 5)")
    command.add_argument(
        "--docs",
        type=Path,
        action="append",
        default=[],
        help="ingest this folder into a fresh temporary index first (repeatable); "
        "without it, the index in DATA_DIR is used as it is",
    )
    command.add_argument("--split", help="only questions of this split (e.g. dev or test)")
    command.add_argument("--json", type=Path, help="write the figures here as JSON")
    command.add_argument("--details", type=Path, help="write one JSON line per question here")
    command.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.k < 1:
        print("--k must be at least 1", file=sys.stderr)
        return 2
    try:
        questions = load_questions(args.questions.read_text(encoding="utf-8").splitlines())
    except (OSError, InvalidInput) as exc:
        print(f"cannot read {args.questions}: {exc}", file=sys.stderr)
        return 2
    if args.split:
        questions = [q for q in questions if q.split == args.split]
    for folder in args.docs:
        if not folder.exists():
            print(f"no such file or folder: {folder}", file=sys.stderr)
            return 2
    if args.docs:
        with tempfile.TemporaryDirectory(prefix="rag-eval-") as data_dir:
            fresh = settings.model_copy(update={"data_dir": Path(data_dir), "docs_path": ""})
            outcomes = asyncio.run(_evaluate(fresh, questions, args.docs))
    else:
        outcomes = asyncio.run(_evaluate(settings, questions, []))
    figures = report(outcomes, args.k)
    print(table(figures, args.k))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if args.details:
        with args.details.open("w", encoding="utf-8") as out:
            for outcome in outcomes:
                out.write(json.dumps(_detail(outcome), ensure_ascii=False) + "\n")
    return 0


async def _evaluate(
    settings: Settings, questions: list[EvalQuestion], folders: list[Path]
) -> list[EvalOutcome]:
    container = await build_container(settings)
    try:
        if folders:
            await container.ingest_paths(folders)
        return [await outcome(container, question) for question in questions]
    finally:
        await container.aclose()


async def outcome(container: Container, question: EvalQuestion) -> EvalOutcome:
    """What the container's answer path does with one question."""
    answerer = container.answerer
    grounding = await answerer.ground(question.question)
    answer = await answerer.compose(grounding)
    headings = {h for p in grounding.passages for h in (p.chunk.title, *p.chunk.heading_path)}
    return EvalOutcome(
        question=question,
        ranked_pages=tuple(p.chunk.route for p in grounding.passages),
        context="\n\n".join(grounding.texts),
        answer=answer.text,
        nothing_found=answer.text == NOTHING_FOUND,
        headings=tuple(sorted(headings)),
        uncertain=answer.uncertain,
    )


def _detail(outcome: EvalOutcome) -> dict[str, Any]:
    question = outcome.question
    return {
        "id": question.id,
        "question": question.question,
        "expected": list(question.pages),
        "rank": outcome.rank(),
        "pages": list(dict.fromkeys(outcome.ranked_pages)),
        "answer": outcome.answer,
        "quotes_question_or_heading": outcome.quotes_question_or_heading,
        "uncertain": outcome.uncertain,
    }
