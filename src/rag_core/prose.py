"""Markdown to prose: the readable sentences of a chunk, without code, tables,
headings or inline syntax. Used for extractive answers and source snippets."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import NamedTuple

SNIPPET_CHARS = 240

_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_SKIP_LINE = re.compile(
    r"^\s*(?:#{1,6}(?:\s|$)|:::|\$ |import\s|export\s|!\[|[-*_=]{3,}\s*$|<[^>]*>\s*$)"
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_INDENTED = re.compile(r"^(?: {4}|\t)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_CELL_BREAK = re.compile(r"(?<!\\)\|")
_INLINE = (
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"\[\^[^\]]*\]"), ""),  # footnote references
    (re.compile(r"<(https?://[^>]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML / JSX tags
    (re.compile(r"\{/\*.*?\*/\}"), ""),  # MDX comments
    (re.compile(r"(\*\*|~~)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"), r"\1"),
    (re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"), r"\1"),
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(?:\s+|(?<![\w\]]))\[\d+\]"), ""),  # the source's own [n] markers
    (re.compile(r"\s+"), " "),
)


class Paragraph(NamedTuple):
    text: str
    item: bool = False  # a list item
    # A table row: its cells' text, and its column names (which ``text`` also reads).
    cells: str = ""
    columns: str = ""


def paragraphs(markdown: str) -> Iterator[str]:
    """The prose paragraphs of Markdown, inline syntax removed; code, tables and headings skipped."""
    return (paragraph.text for paragraph in items(markdown))


def items(markdown: str, *, tables: bool = False) -> Iterator[Paragraph]:
    """:func:`paragraphs`, each with whether it is a list item. With ``tables``, each
    row of a table that has a header row is a paragraph too, read as its first cell
    and the others named by their columns (:func:`table_row`)."""
    lines: list[str] = []
    listed = False
    in_fence = False
    in_indented_code = False
    previous_blank = True
    header: list[str] | None = None  # the columns of the table being read
    source = [*_without_front_matter(markdown.splitlines()), ""]
    for number, line in enumerate(source):
        if tables and not in_fence:
            following = source[number + 1] if number + 1 < len(source) else ""
            if header is None and "|" in line and _TABLE_RULE.match(following):
                header, source[number + 1] = _cells(line), "|"  # the rule: an empty row
            elif header is not None and "|" in line:
                cells = _cells(line)
                row = table_row(header, cells)
                if lines:
                    yield Paragraph(clean(" ".join(lines)), listed)
                    lines = []
                if row:
                    yield Paragraph(row, cells=" ".join(cells), columns=" ".join(header[1:]))
                continue
            else:
                header = None
            if header is not None:
                if lines:
                    yield Paragraph(clean(" ".join(lines)), listed)
                    lines = []
                previous_blank = True
                continue
        if _FENCE.match(line):
            in_fence = not in_fence
            line = ""
        elif in_fence:
            continue
        is_list_item = _LIST_ITEM.match(line) is not None
        in_indented_code = (
            bool(line.strip())
            and not is_list_item
            and _INDENTED.match(line) is not None
            and (previous_blank or in_indented_code)
        )
        previous_blank = not line.strip()
        skip = in_indented_code or line.count("|") >= 2 or _SKIP_LINE.match(line) is not None
        if previous_blank or skip or is_list_item:
            if lines:
                yield Paragraph(clean(" ".join(lines)), listed)
            lines = []
            listed = is_list_item
        if not (previous_blank or skip):
            lines.append(_LIST_ITEM.sub("", _QUOTE.sub("", line)))


def _cells(line: str) -> list[str]:
    cells = _CELL_BREAK.split(line.strip())
    if cells and not cells[0].strip():
        cells = cells[1:]
    if cells and not cells[-1].strip():
        cells = cells[:-1]
    return [clean(cell.replace("\\|", "|")) for cell in cells]


def table_row(header: list[str], cells: list[str]) -> str:
    """A table row as a sentence: "Topics — Use Case: Continuous data streams;
    Characteristics: Asynchronous." Empty when its first cell or all others are empty."""
    if not cells or not cells[0]:
        return ""
    named = [
        f"{column}: {cell}" if column else cell
        for column, cell in zip(header[1:], cells[1:], strict=False)
        if cell
    ]
    if not named:
        return ""
    text = f"{cells[0]} — {'; '.join(named)}"
    return text if text[-1] in ".!?" else f"{text}."


def _without_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for end, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return lines[end + 1 :]
    return lines


def clean(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text.strip()


@functools.lru_cache(maxsize=1024)
def snippet(markdown: str) -> str:
    """The start of the prose of ``markdown``, at most SNIPPET_CHARS long. Cached: every
    answer cites its passages, and popular ones are cited again and again (cleaning
    their markdown was ~6 % of an answer's CPU at 200 users; bench/README.md, P14)."""
    parts: list[str] = []
    length = -1
    for paragraph in paragraphs(markdown):  # only as many as the snippet shows
        parts.append(paragraph)
        length += len(paragraph) + 1
        if length > SNIPPET_CHARS:
            break
    text = " ".join(parts) or " ".join(markdown.split())
    return truncate(text, SNIPPET_CHARS)


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"
