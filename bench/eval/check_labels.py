"""Check the labels of a textbook evaluation set against the docs folder.

Usage: check_labels.py DOCS_FOLDER EVAL_JSONL

For every answerable question: each expected page must be a route of the docs,
at least one answer phrase must occur in the prose of an expected page, and no
answer phrase may occur in a heading line (of any page) or in the question.
Prose excludes front matter, code blocks, headings and the Learning
Objectives, Review Questions, exercise and Further Reading sections. Matching
is on normalised text: casefolded, inline Markdown removed, every run of
non-alphanumeric characters turned into one space. Prints each problem; exits 1
if there is any.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from adapters.filesystem import read_documents

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"[*`]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_SKIPPED_SECTIONS = ("learning objectives", "review questions", "further reading", "exercise")


def normalise(text: str) -> str:
    """Casefold, drop inline Markdown and collapse non-alphanumerics to single spaces."""
    text = _EMPHASIS.sub("", _LINK.sub(r"\1", text)).casefold()
    return " " + _NON_ALNUM.sub(" ", text).strip() + " "


def split_page(text: str) -> tuple[list[str], list[str]]:
    """``(prose paragraphs, heading lines)`` of one page body, both normalised."""
    paragraphs: list[str] = []
    headings: list[str] = []
    current: list[str] = []
    fence = ""
    skipping = False

    def flush() -> None:
        if current:
            paragraphs.append(normalise(" ".join(current)))
            current.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if fence:
            fence = "" if line.startswith(fence) else fence
            continue
        if line.startswith(("```", "~~~")):
            flush()
            fence = line[:3]
        elif line.startswith("#"):
            flush()
            headings.append(normalise(line))
            skipping = any(name in line.casefold() for name in _SKIPPED_SECTIONS)
        elif not line:
            flush()
        elif not skipping:
            current.append(line)
    flush()
    return paragraphs, headings


def check(docs: Path, labels: Path) -> list[str]:
    """Every problem found in the labels, one message each."""
    prose: dict[str, list[str]] = {}
    headings: list[str] = []
    for document in read_documents(docs):
        prose[document.route], page_headings = split_page(document.text)
        headings.extend(page_headings)
    problems: list[str] = []
    for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        name = f"{item.get('id', f'line {number}')}"
        pages: list[str] = item["pages"]
        answers: list[str] = item["answers"]
        if item["kind"] == "unanswerable":
            if pages or answers:
                problems.append(f"{name}: unanswerable but has pages or answers")
            continue
        if not pages or not answers:
            problems.append(f"{name}: answerable but has no pages or no answers")
        for page in pages:
            if page not in prose:
                problems.append(f"{name}: no such route {page}")
        question = normalise(item["question"])
        found = False
        for answer in answers:
            phrase = normalise(answer)
            if len(phrase.split()) < 3 or len(phrase.split()) > 10:
                problems.append(f"{name}: answer {answer!r} is not 3-10 words")
            if phrase in question:
                problems.append(f"{name}: answer {answer!r} occurs in the question")
            if any(phrase in heading for heading in headings):
                problems.append(f"{name}: answer {answer!r} occurs in a heading")
            found = found or any(
                phrase in paragraph for page in pages for paragraph in prose.get(page, [])
            )
        if not found:
            problems.append(f"{name}: no answer occurs in the prose of {pages}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: check_labels.py DOCS_FOLDER EVAL_JSONL", file=sys.stderr)
        return 2
    problems = check(Path(argv[1]), Path(argv[2]))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
