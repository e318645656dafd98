"""Extractive answers: the retrieved passages' best sentences, each cited.

Used when no chat model is configured or it is down. Sentences come from the
prose of Markdown chunks only (never code, tables or headings), are scored by
overlap with the question's terms weighted by rarity, and are put back in
reading order: by source, then by position within it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence

import attrs

from rag_core.answers import Answer, AnswerMode, Citation, Passage
from rag_core.fusion import idf
from rag_core.lexical import tokenize

NOTHING_FOUND = "I couldn't find anything about that in the documentation."
SNIPPET_CHARS = 240
_RANK_BONUS = 0.25  # breaks near-ties in favour of better-ranked sources
_SELECTION_WEIGHT = 0.5  # selected-text terms count, less than the question's, for passages
_MIN_WORDS = 4

_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_SKIP_LINE = re.compile(
    r"^\s*(?:#{1,6}(?:\s|$)|:::|\$ |import\s|export\s|!\[|[-*_=]{3,}\s*$|<[^>]*>\s*$)"
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_INDENTED = re.compile(r"^(?: {4}|\t)")
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
_BRACKET_NUMBER = re.compile(r"\[\d+\]")
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…。؟۔])|(?<=[.!?…。؟۔][\"'”’)]))\s+")
_ABBREVIATION = re.compile(r"(?:(?i:\b(?:e\.g|i\.e|etc|vs|cf|fig|eq|approx|dr|mr|ms))|\b[A-Z])\.$")
_TERMINAL = re.compile(r"[.!?…。؟۔][\"'”’)]*$")


@attrs.frozen(slots=True)
class _Source:
    citation: Citation  # numbered 0 until quoted
    paragraphs: tuple[str, ...]


@attrs.frozen(slots=True)
class _Sentence:
    source: int
    position: int
    text: str
    terms: frozenset[str]


def compose_extractive(
    question: str,
    passages: Sequence[Passage],
    *,
    selected_text: str = "",
    max_sentences: int = 4,
    max_chars: int = 900,
) -> Answer:
    """Answer ``question`` with at most ``max_sentences`` quoted sentences, ``max_chars`` in all.

    Each sentence ends with ``[n]``; citations are numbered by first appearance
    and every one is used. A non-blank ``selected_text`` is the primary source,
    citation [1] when quoted, and its best sentence always leads; mode is
    SELECTION when there are no passages with it, EXTRACTIVE otherwise. When no
    sentence overlaps the question, the first sentences of the top source are
    quoted; when there is no prose at all, an honest "nothing found" answer with
    no citations. Deterministic. Raises ValueError if max_sentences < 1 or max_chars < 40.
    """
    if max_sentences < 1 or max_chars < 40:
        raise ValueError("max_sentences must be >= 1 and max_chars >= 40")
    has_selection = bool(selected_text.strip())
    mode = AnswerMode.SELECTION if has_selection and not passages else AnswerMode.EXTRACTIVE
    sources = _sources(passages, selected_text if has_selection else None)
    sentences = [
        sentence
        for index, source in enumerate(sources)
        for sentence in _sentences(index, source, lenient=has_selection and index == 0)
    ]
    if not sentences:
        return Answer(text=NOTHING_FOUND, mode=mode)
    extra = set(tokenize(selected_text)) if has_selection else set()
    scores = _scores(sentences, set(tokenize(question)), extra, selection=has_selection)
    marker = len(f" [{len(sources)}]")
    order = _preference(sentences, scores, has_selection, max_sentences)
    chosen = _pick(order, max_sentences, max_chars, marker)
    numbers: dict[int, int] = {}
    parts = []
    for sentence in sorted(chosen, key=lambda s: (s.source, s.position)):
        number = numbers.setdefault(sentence.source, len(numbers) + 1)
        parts.append(f"{sentence.text} [{number}]")
    citations = tuple(
        attrs.evolve(sources[index].citation, number=number) for index, number in numbers.items()
    )
    return Answer(text=" ".join(parts), mode=mode, citations=citations)


def _sources(passages: Sequence[Passage], selection: str | None) -> list[_Source]:
    sources = []
    if selection is not None:
        citation = Citation(0, "Selected text", "", (), _snippet(selection), 1.0, None, None)
        sources.append(_Source(citation, tuple(_paragraphs(selection))))
    for passage in sorted(passages, key=lambda p: p.rank):
        chunk = passage.chunk
        citation = Citation(
            number=0,
            title=chunk.title,
            route=chunk.route,
            heading_path=chunk.heading_path,
            snippet=_snippet(chunk.text),
            score=passage.score,
            chunk_id=chunk.id,
            document_id=chunk.document_id,
        )
        sources.append(_Source(citation, tuple(_paragraphs(chunk.text))))
    return sources


def _paragraphs(markdown: str) -> Iterator[str]:
    """The prose paragraphs of Markdown, inline syntax removed; code, tables and headings skipped."""
    lines: list[str] = []
    in_fence = False
    in_indented_code = False
    previous_blank = True
    for line in [*_without_front_matter(markdown.splitlines()), ""]:
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
                yield _clean(" ".join(lines))
            lines = []
        if not (previous_blank or skip):
            lines.append(_LIST_ITEM.sub("", _QUOTE.sub("", line)))


def _without_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for end, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return lines[end + 1 :]
    return lines


def _clean(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text.strip()


def _snippet(markdown: str) -> str:
    text = " ".join(_paragraphs(markdown)) or " ".join(markdown.split())
    return _truncate(text, SNIPPET_CHARS)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"


def _sentences(source: int, item: _Source, *, lenient: bool) -> Iterator[_Sentence]:
    position = 0
    for paragraph in item.paragraphs:
        pieces: list[str] = []
        for piece in _SENTENCE_BREAK.split(paragraph):
            if pieces and _ABBREVIATION.search(pieces[-1]):
                pieces[-1] = f"{pieces[-1]} {piece}"
            else:
                pieces.append(piece)
        for text in pieces:
            terms = frozenset(tokenize(text))
            usable = bool(terms) and not _BRACKET_NUMBER.search(text)
            if not lenient:
                usable = usable and len(text.split()) >= _MIN_WORDS and not text.endswith(":")
            if usable:
                ending = "" if _TERMINAL.search(text) else "."
                yield _Sentence(source, position, text.rstrip(":") + ending, terms)
                position += 1


def _scores(
    sentences: Sequence[_Sentence], question: set[str], extra: set[str], *, selection: bool
) -> dict[_Sentence, float]:
    """Rarity-weighted overlap with the question (and, for passages, the selection)."""
    wanted = question | extra
    frequency = Counter(term for s in sentences for term in s.terms & wanted)
    weight = {term: idf(len(sentences), count) for term, count in frequency.items()}
    scores = {}
    for s in sentences:
        overlap = sum(weight[t] for t in s.terms & question)
        if selection and s.source > 0:
            overlap += _SELECTION_WEIGHT * sum(weight[t] for t in s.terms & (extra - question))
        scores[s] = overlap + _RANK_BONUS / (1 + s.source) if overlap > 0 else 0.0
    return scores


def _preference(
    sentences: Sequence[_Sentence],
    scores: dict[_Sentence, float],
    has_selection: bool,
    max_sentences: int,
) -> list[_Sentence]:
    """Candidates, most wanted first; the selection leads but leaves room for a passage."""
    ranked = sorted(sentences, key=lambda s: (-scores[s], s.source, s.position))
    relevant = [s for s in ranked if scores[s] > 0]
    if not relevant:  # retrieval found these sources for a reason: quote the top one's opening
        top = sentences[0].source
        return [s for s in sentences if s.source == top]
    if not has_selection:
        return relevant
    selected = [s for s in relevant if s.source == 0] or [s for s in sentences if s.source == 0][:1]
    others = [s for s in relevant if s.source > 0]
    return (selected[: max(1, max_sentences - 1)] if others else selected) + others


def _pick(
    order: Sequence[_Sentence], max_sentences: int, max_chars: int, marker: int
) -> list[_Sentence]:
    chosen: list[_Sentence] = []
    seen: set[str] = set()
    used = 0
    for sentence in order:
        if len(chosen) == max_sentences:
            break
        key = sentence.text.casefold()
        cost = len(sentence.text) + marker + (1 if chosen else 0)
        if key in seen or (chosen and used + cost > max_chars):
            continue
        if not chosen and cost > max_chars:
            sentence = attrs.evolve(sentence, text=_truncate(sentence.text, max_chars - marker))
            cost = len(sentence.text) + marker
        chosen.append(sentence)
        seen.add(key)
        used += cost
    return chosen
