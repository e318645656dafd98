"""Heading-aware chunking: a Document into the Chunks that are indexed and cited.

A document is cut into sections at ATX headings (outside code fences); each
section's body into blocks (paragraphs, lists, fenced code, tables); blocks
are packed into chunks of at most ``max_chars``. Code blocks and tables are
atomic: never cut, and a single one larger than the budget is a chunk of its
own. Only prose is split further or repeated as the overlap that opens a
follow-on chunk. A prose block over the budget is cut into its sentences; a
sentence still over the budget into its words (so a chunk may end inside it,
at whitespace); and a word still over the budget every ``max_chars`` chars.
So every chunk holds at most ``max_chars``, except one that is a single
over-long code block or table. Splitting never loses or repeats a word, apart
from the overlap; only the whitespace between the pieces is normalised (to one
space or newline).
"""

from __future__ import annotations

import hashlib
import itertools
import posixpath
import re
import uuid
from typing import Literal

import attrs

from rag_core.documents import Chunk, Document
from rag_core.markdown import Fence, fence_opening, parse_heading

__all__ = ["Chunker", "chunk_id", "content_hash"]

_SEPARATOR = "\n\n"
# Where a new sentence (or a new line, e.g. a list item) starts inside prose.
_SENTENCE_START = re.compile(r"(?<=[.!?…])[\"')\]*_]*[ \t]+(?=\S)|\n[ \t]*(?=\S)")
_TABLE_DELIMITER = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$")

BlockKind = Literal["prose", "code", "table"]


@attrs.frozen(slots=True)
class _Block:
    """A paragraph, list, code block or table, or one sentence of a long paragraph,
    or one word (or a budget-sized slice of a word) of an over-long sentence.
    ``glue`` is the whitespace that joins it to the unit before it in a chunk
    (empty between the slices of one word)."""

    kind: BlockKind
    text: str
    glue: str = _SEPARATOR


@attrs.frozen(slots=True)
class _Section:
    heading_path: tuple[str, ...]
    blocks: tuple[_Block, ...]


def chunk_id(document_id: str, ordinal: int, content_hash: str) -> str:
    """The chunk's stable id: a UUID string from a blake2b digest of the three."""
    key = "\x1f".join((document_id, str(ordinal), content_hash)).encode()
    return str(uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest()))


def content_hash(route: str, breadcrumb: str, text: str) -> str:
    """32 hex chars of sha256 over what a reader sees of a chunk: where it links,
    its breadcrumb and its text (a renamed heading or a moved page changes it)."""
    return hashlib.sha256(f"{route}\n{breadcrumb}\n{text}".encode()).hexdigest()[:32]


class Chunker:
    """Splits documents into heading-aware chunks of about ``max_chars``.

    Prose over the budget is cut at sentence starts; a sentence still over it
    at whitespace; a word still over it every ``max_chars`` chars. So only a
    single over-long code block or table makes a chunk larger than
    ``max_chars``. A follow-on chunk within one section opens with up to
    ``overlap_chars`` of the previous chunk's trailing prose, from a sentence
    start on: whole sentences, or the opening words of a sentence cut at words
    (none if no sentence starts that close to the end). Raises ValueError unless
    ``max_chars > overlap_chars >= 0``.
    """

    def __init__(self, max_chars: int = 1500, overlap_chars: int = 200) -> None:
        if not max_chars > overlap_chars >= 0:
            raise ValueError(
                f"need max_chars > overlap_chars >= 0, got {max_chars} and {overlap_chars}"
            )
        self.max_chars = max_chars
        self.overlap_chars = overlap_chars

    def split(self, document: Document) -> list[Chunk]:
        """The document's chunks, ordinals 0..n-1; deterministic for equal input.

        Headings with no body of their own produce no chunk; a whitespace-only
        document produces none.
        """
        section = posixpath.dirname(document.id)
        chunks: list[Chunk] = []
        for part in _sections(document.text):
            for text in self._pack(part.blocks):
                draft = Chunk(
                    id="",
                    document_id=document.id,
                    ordinal=len(chunks),
                    text=text,
                    heading_path=part.heading_path,
                    content_hash="",
                    route=document.route,
                    title=document.title,
                    section=section,
                )
                digest = content_hash(draft.route, draft.breadcrumb, text)
                chunks.append(
                    attrs.evolve(
                        draft,
                        id=chunk_id(document.id, draft.ordinal, digest),
                        content_hash=digest,
                    )
                )
        return chunks

    def _pack(self, blocks: tuple[_Block, ...]) -> list[str]:
        packed: list[list[_Block]] = []
        current: list[_Block] = []
        size = 0  # len(_join(current)), kept up to date: a chunk may hold many words
        for unit in _units(blocks, self.max_chars):
            grown = size + len(unit.glue) + len(unit.text) if current else len(unit.text)
            if not current or grown <= self.max_chars:
                current.append(unit)
                size = grown
                continue
            packed.append(current)
            room = self.max_chars - len(unit.text) - len(unit.glue)
            tail = _prose_tail(current, min(self.overlap_chars, room))
            current = [_Block("prose", tail), unit] if tail else [unit]
            size = len(_join(current))
        if current:
            packed.append(current)
        return [_join(chunk) for chunk in packed]


def _units(blocks: tuple[_Block, ...], max_chars: int) -> list[_Block]:
    """The blocks, with prose blocks over the budget cut into their sentences and
    sentences over the budget into their words."""
    units: list[_Block] = []
    for block in blocks:
        if block.kind != "prose" or len(block.text) <= max_chars:
            units.append(block)
            continue
        for sentence in _sentences(block):
            if len(sentence.text) <= max_chars:
                units.append(sentence)
            else:
                units.extend(_words(sentence, max_chars))
    return units


def _sentences(block: _Block) -> list[_Block]:
    """The sentences (and lines) of a prose block; the first keeps its glue."""
    sentences: list[_Block] = []
    starts = [*_sentence_starts(block.text), len(block.text)]
    glue = block.glue
    for begin, end in itertools.pairwise(starts):
        sentence = block.text[begin:end].rstrip()
        sentences.append(_Block("prose", sentence, glue))
        glue = "\n" if "\n" in block.text[begin + len(sentence) : end] else " "
    return sentences


def _words(sentence: _Block, max_chars: int) -> list[_Block]:
    """The words of an over-long sentence, joined by one space; the first keeps the
    sentence's glue. A word over ``max_chars`` is cut into slices of that size."""
    words: list[_Block] = []
    glue = sentence.glue
    for word in sentence.text.split():
        for begin in range(0, len(word), max_chars):
            words.append(_Block("prose", word[begin : begin + max_chars], glue))
            glue = ""  # the next slice continues this word
        glue = " "
    return words


def _join(units: list[_Block]) -> str:
    """The units as text; each is preceded by its glue except the first."""
    return units[0].text + "".join(unit.glue + unit.text for unit in units[1:]) if units else ""


def _sentence_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in _SENTENCE_START.finditer(text))]


def _prose_tail(units: list[_Block], budget: int) -> str:
    """The longest run of whole sentences ending the prose that ends ``units``
    (or, if it ends inside a sentence cut at words, the words of it there), at
    most ``budget`` chars; empty if ``units`` end with code or a table."""
    first = len(units)
    while first > 0 and units[first - 1].kind == "prose":
        first -= 1
    if first == len(units) or budget <= 0:
        return ""
    prose = _join(units[first:])
    for start in _sentence_starts(prose):
        tail = prose[start:].strip()
        if len(tail) <= budget:
            return tail
    return ""


def _sections(text: str) -> list[_Section]:
    """The body of each heading (and of the text before the first), with the
    breadcrumb of headings enclosing it. Sections without a body are dropped."""
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    fence: Fence | None = None

    def close() -> None:
        blocks = _blocks(body)
        if blocks:
            sections.append(_Section(tuple(title for _, title in stack if title), blocks))
        body.clear()

    for line in text.split("\n"):
        if fence is not None:
            fence = None if fence.closes(line) else fence
        elif (fence := fence_opening(line)) is None and (heading := parse_heading(line)):
            close()
            level, title = heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            continue
        body.append(line)
    close()
    return sections


def _blocks(lines: list[str]) -> tuple[_Block, ...]:
    blocks: list[_Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            kind: BlockKind = "prose"
            if len(paragraph) > 1 and _TABLE_DELIMITER.match(paragraph[1]):
                kind = "table"  # a table written without leading pipes
            blocks.append(_Block(kind, "\n".join(paragraph).strip("\n")))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        fence = fence_opening(line)
        if fence is not None or line.lstrip().startswith("|"):
            flush()
            kind: BlockKind = "code" if fence is not None else "table"
            end = _block_end(lines, i, fence)
            blocks.append(_Block(kind, "\n".join(row.rstrip() for row in lines[i:end])))
            i = end
            continue
        if line.strip():
            paragraph.append(line)
        else:
            flush()
        i += 1
    flush()
    return tuple(blocks)


def _block_end(lines: list[str], start: int, fence: Fence | None) -> int:
    """One past the last line of the code block or table starting at ``start``.
    An unclosed fence runs to the end of the section (CommonMark)."""
    end = start + 1
    if fence is not None:
        while end < len(lines) and not fence.closes(lines[end]):
            end += 1
        return min(end + 1, len(lines))
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    return end
