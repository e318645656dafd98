"""A plain-library retrieval baseline: BM25 (``bm25s``) over ~1,500-character passages.

``python bench/eval/baseline_bm25s.py DOCS_DIR QUESTIONS.jsonl [--k 5] [--json OUT.json]``

Documents are read with the project's ``read_documents`` (so routes match the labels); each
document's text is cut into passages (paragraphs split at blank lines, packed up to 1,500
characters; a longer paragraph cut every 1,500 characters), indexed with ``bm25s`` (English
stop words, PyStemmer's English stemmer), and the top k passages per question become one
``EvalOutcome``: ranked pages = their routes in order, context = their text, answer = the first
passage's text. A baseline has no composer, so ``answer_acc`` (and ``quotes``) only say whether
the best passage holds an answer phrase: not comparable with the service's composed answers.
``nothing`` counts questions where no passage scored above 0.

Runs from bench/.venv-eval (``bench/eval/setup.sh``); the project's ``src`` is put on
``sys.path`` from this file's location.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import bm25s
import Stemmer

from adapters.filesystem import read_documents
from rag_core.evaluation import EvalOutcome, load_questions, report, table

PASSAGE_CHARS = 1500
_BLANK = re.compile(r"\n[ \t]*\n")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def passages(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed into passages of at most ``limit`` characters."""
    out: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in _BLANK.split(text)):
        if not paragraph:
            continue
        pieces = [paragraph[i : i + limit] for i in range(0, len(paragraph), limit)]
        for piece in pieces:
            if current and len(current) + 2 + len(piece) <= limit:
                current = f"{current}\n\n{piece}"
            else:
                if current:
                    out.append(current)
                current = piece
    if current:
        out.append(current)
    return out


def run(docs: Path, questions_file: Path, k: int) -> dict[str, dict[str, float | int]]:
    routes: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    for document in read_documents(docs):
        for passage in passages(document.text):
            routes.append(document.route)
            titles.append(document.title)
            texts.append(passage)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False))
    vocabulary = retriever.vocab_dict
    questions = load_questions(questions_file.read_text(encoding="utf-8").splitlines())
    queries = bm25s.tokenize(
        [q.question for q in questions],
        stopwords="en",
        stemmer=stemmer,
        return_ids=False,
        show_progress=False,
    )
    top = min(k, len(texts))
    outcomes: list[EvalOutcome] = []
    for question, tokens in zip(questions, queries, strict=True):
        known = [t for t in tokens if t in vocabulary]
        if not known:
            outcomes.append(EvalOutcome(question=question, ranked_pages=(), nothing_found=True))
            continue
        ids, scores = retriever.retrieve([known], k=top, show_progress=False)
        hits = [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        headings = {h for i in hits for h in _HEADING.findall(texts[i])} | {titles[i] for i in hits}
        outcomes.append(
            EvalOutcome(
                question=question,
                ranked_pages=tuple(routes[i] for i in hits),
                context="\n\n".join(texts[i] for i in hits),
                answer=texts[hits[0]] if hits else "",
                nothing_found=not hits,
                headings=tuple(sorted(headings)),
            )
        )
    print(f"{len(texts)} passages from {len(set(routes))} documents, {len(questions)} questions")
    return report(outcomes, k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("docs", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = run(args.docs, args.questions, args.k)
    print(table(figures, args.k))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
