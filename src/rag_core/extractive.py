"""Extractive answers: the retrieved passages' best sentences, each cited.

Used when no chat model is configured or it is down. Sentences come from the
prose of Markdown chunks only (never code, tables or headings), are scored by
overlap with the question's terms weighted by rarity, and are put back in
reading order: by source, then by position within it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import attrs

from rag_core.answers import Answer, AnswerMode, Citation, Passage
from rag_core.fusion import idf
from rag_core.lexical import tokenize
from rag_core.prose import Paragraph, items, paragraphs, snippet, truncate
from rag_core.sections import about_the_page

NOTHING_FOUND = "I couldn't find anything about that in the documentation."
_RANK_BONUS = 0.25  # breaks near-ties in favour of better-ranked sources
# How much a sentence's score follows its passage's retrieval score (relative to the
# best passage's): half of it, so a weakly retrieved passage's sentence counts less.
_RETRIEVAL_WEIGHT = 0.5
_SELECTION_WEIGHT = 0.5  # selected-text terms count, less than the question's, for passages
_MIN_WORDS = 4
_HEADING_WEIGHT = 0.5
_KEEP_RATIO = 0.3
_HEADED_ITEMS = 8  # a longer list opening a section is quoted item by item
# Sentences about the text itself rather than its subject.
_ABOUT_THE_TEXT = re.compile(
    r"^(?:in\s+)?(?:this|the)\s+(?:chapter|section|page|module|lesson|guide|tutorial|week)\b",
    re.IGNORECASE,
)
_ABOUT_THE_TEXT_WEIGHT = 0.5
# A sentence ending in ':' that cannot stand alone ("... you will be able to:", "the
# following:"); one that can ("Services are defined using .srv files ...:") is quoted
# with a full stop.
_LEAD_IN = re.compile(
    r"(?:\b(?:to|following|follows|include|includes|including|providing|involving|offering|"
    r"containing|featuring|are|is|as|like|these|below|of|for|with|by|be|this|here|steps?|"
    r"example)\s*|^\S+\s*):$",
    re.IGNORECASE,
)

_BRACKET_NUMBER = re.compile(r"\[\d+\]")
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…。؟۔])|(?<=[.!?…。؟۔][\"'”’)]))\s+")
_ABBREVIATION = re.compile(r"(?:(?i:\b(?:e\.g|i\.e|etc|vs|cf|fig|eq|approx|dr|mr|ms))|\b[A-Z])\.$")
_DEFINING = r"(?:is|are|refers? to|means?|describes?|represents?|provides?|enables?)\b"
_QUESTION_WORDS = re.compile(r"^\s*(?:what|who)\s+(?:is|are)\s+(?:an?\s+|the\s+)?", re.I)
_DEFINITION_BONUS = 1.5
CODE_ONLY = "The answer is in the code example of the source below."
_TERMINAL = re.compile(r"[.!?…。؟۔][\"'”’)]*$")


@attrs.frozen(slots=True)
class _Source:
    citation: Citation  # numbered 0 until quoted
    paragraphs: tuple[tuple[Paragraph, tuple[str, ...]], ...]  # each with the list it leads into
    heading_terms: frozenset[str] = frozenset()  # the page title's and the breadcrumb's


@attrs.frozen(slots=True)
class _Sentence:
    source: int
    position: int
    text: str
    terms: frozenset[str]
    # A lead-in quoted with its list: the lead-in's terms, and each item's. It scores
    # as the lead-in and its best item, not as the bag of every item's words.
    lead: frozenset[str] = frozenset()
    items: tuple[frozenset[str], ...] = ()
    # A table row's column names: like headings, they count only where the cells lack them.
    labels: frozenset[str] = frozenset()


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
    no citations; both, and a pointer to code, are ``uncertain``. Deterministic. Raises ValueError if max_sentences < 1 or max_chars < 40.
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
        if not passages:
            return Answer(text=NOTHING_FOUND, mode=mode, uncertain=True)
        top = attrs.evolve(sources[1 if has_selection else 0].citation, number=1)
        return Answer(text=f"{CODE_ONLY} [1]", mode=mode, citations=(top,), uncertain=True)
    extra = set(tokenize(selected_text)) if has_selection else set()
    scores = _scores(sentences, sources, set(tokenize(question)), extra, selection=has_selection)
    _prefer_definitions(question, sentences, scores)
    marker = len(f" [{len(sources)}]")
    order = _preference(sentences, scores, has_selection, max_sentences)
    if not has_selection:  # with one, the passages complement it: none is padding
        order = _worth_quoting(order, scores)
    chosen = _pick(order, max_sentences, max_chars, marker)
    # One citation per page: sentences of two chunks of one page share its number.
    pages = [source.citation.route or f"#{index}" for index, source in enumerate(sources)]
    numbers: dict[str, tuple[int, int]] = {}  # page -> (number, first source quoted)
    parts = []
    for sentence in sorted(chosen, key=lambda s: (s.source, s.position)):
        page = pages[sentence.source]
        number, _ = numbers.setdefault(page, (len(numbers) + 1, sentence.source))
        parts.append(f"{sentence.text} [{number}]")
    citations = tuple(
        attrs.evolve(sources[index].citation, number=number) for number, index in numbers.values()
    )
    # Else the top source's opening was quoted; a selection is the reader's own source.
    fitting = has_selection or any(scores[s] > 0 for s in order)
    return Answer(text=" ".join(parts), mode=mode, citations=citations, uncertain=not fitting)


def _sources(passages: Sequence[Passage], selection: str | None) -> list[_Source]:
    sources = []
    if selection is not None:
        citation = Citation(0, "Selected text", "", (), snippet(selection), 1.0, None, None)
        selected = tuple((Paragraph(text), ()) for text in paragraphs(selection))
        sources.append(_Source(citation, selected))
    for passage in sorted(passages, key=lambda p: p.rank):
        chunk = passage.chunk
        citation = Citation(
            number=0,
            title=chunk.title,
            route=chunk.route,
            heading_path=chunk.heading_path,
            snippet=snippet(chunk.text),
            score=passage.score,
            chunk_id=chunk.id,
            document_id=chunk.document_id,
        )
        quotable = not about_the_page(chunk.heading_path)
        parts = items(chunk.text, tables=True)
        heading = chunk.heading_path[-1] if chunk.heading_path else ""
        prose = tuple(_with_lists(parts, heading)) if quotable else ()
        headings = frozenset(tokenize(" ".join((chunk.title, *chunk.heading_path))))
        sources.append(_Source(citation, prose, headings))
    return sources


def _with_lists(
    parts: Iterable[Paragraph], heading: str = ""
) -> Iterator[tuple[Paragraph, tuple[str, ...]]]:
    """Paragraphs, each with the list items that follow it when it is a lead-in ending
    in ':' ("... offering several advantages:" and its items are quoted as one: the
    items are what the lead-in says, and neither reads well alone). A list that opens
    the section, with no lead-in, is led by the section's ``heading`` ("Sensor
    Systems:") when it has at most ``_HEADED_ITEMS`` items."""
    lead: Paragraph | None = Paragraph(f"{heading}:") if heading else None
    listed: list[str] = []
    opening = True  # still before the section's first paragraph
    for part in [*parts, Paragraph("")]:
        if part.item and lead is not None:
            listed.append(part.text.rstrip(" .;"))
            continue
        if lead is not None:
            if not opening or len(listed) <= _HEADED_ITEMS:
                if listed or not opening:
                    yield lead, tuple(listed)
            else:
                yield from ((Paragraph(item, item=True), ()) for item in listed)
            lead, listed = None, []
        opening = False
        if not part.item and not part.columns and part.text.endswith(":"):
            lead = part
        elif part.text:
            yield part, ()


def _sentences(source: int, item: _Source, *, lenient: bool) -> Iterator[_Sentence]:
    position = 0
    for paragraph, listed in item.paragraphs:
        if paragraph.columns:  # a table row: one sentence; its column names are labels
            labels = frozenset(tokenize(paragraph.columns))
            cells = frozenset(tokenize(paragraph.cells))
            yield _Sentence(source, position, paragraph.text, cells, labels=labels - cells)
            position += 1
            continue
        pieces: list[str] = []
        for piece in _SENTENCE_BREAK.split(paragraph.text):
            if pieces and _ABBREVIATION.search(pieces[-1]):
                pieces[-1] = f"{pieces[-1]} {piece}"
            else:
                pieces.append(piece)
        if listed:  # the last sentence leads into the list: quoted with it
            lead = frozenset(tokenize(pieces[-1]))
            parts = tuple(frozenset(tokenize(text)) for text in listed)
            text = f"{pieces[-1]} {'; '.join(listed)}."
            yield _Sentence(source, position, text, lead.union(*parts), lead, parts)
            position += 1
            pieces.pop()
        for text in pieces:
            terms = frozenset(tokenize(text))
            usable = bool(terms) and not _BRACKET_NUMBER.search(text)
            if not lenient:
                usable = (
                    usable
                    and len(text.split()) >= _MIN_WORDS
                    and not _LEAD_IN.search(text)
                    and not text.rstrip("\"'”’)").endswith("?")
                )
            if usable:
                ending = "" if _TERMINAL.search(text) else "."
                yield _Sentence(source, position, text.rstrip(":") + ending, terms)
                position += 1


def _scores(
    sentences: Sequence[_Sentence],
    sources: Sequence[_Source],
    question: set[str],
    extra: set[str],
    *,
    selection: bool,
) -> dict[_Sentence, float]:
    """Rarity-weighted overlap with the question (and, for passages, the selection).
    A question term the sentence lacks but its headings name ("Key Features of
    Gazebo" above "Accurate physics simulation ...") counts ``_HEADING_WEIGHT``; the
    overlap then follows the passage's retrieval score by ``_RETRIEVAL_WEIGHT``."""
    wanted = question | extra
    frequency = Counter(term for s in sentences for term in s.terms & wanted)
    weight = {term: idf(len(sentences), count) for term, count in frequency.items()}
    rarest = idf(len(sentences), 0)  # a term only the headings name
    top = max((source.citation.score for source in sources), default=0.0)
    scores = {}
    for s in sentences:
        overlap = sum(weight[t] for t in _matched(s, question, weight))
        # The opening sentence of a section its headings name is about that subject.
        if overlap > 0 or s.position == 0:
            named = ((sources[s.source].heading_terms | s.labels) & question) - s.terms
            overlap += _HEADING_WEIGHT * sum(weight.get(t, rarest) for t in named)
        if selection and s.source > 0:
            overlap += _SELECTION_WEIGHT * sum(weight[t] for t in s.terms & (extra - question))
        if _ABOUT_THE_TEXT.match(s.text):  # "This chapter covers X" names X, says nothing of it
            overlap *= _ABOUT_THE_TEXT_WEIGHT
        if top > 0 and not (selection and s.source == 0):  # the selection has no score
            found = max(sources[s.source].citation.score, 0.0) / top
            overlap *= 1 - _RETRIEVAL_WEIGHT + _RETRIEVAL_WEIGHT * found
        scores[s] = overlap + _RANK_BONUS / (1 + s.source) if overlap > 0 else 0.0
    return scores


def _matched(s: _Sentence, question: set[str], weight: dict[str, float]) -> set[str]:
    """The question terms a sentence answers with: a lead-in with its list counts
    its own terms and those of its best-matching item."""
    if not s.items:
        return set(s.terms & question)
    best = max(s.items, key=lambda item: sum(weight[t] for t in item & question))
    return set((s.lead | best) & question)


def _prefer_definitions(
    question: str, sentences: Sequence[_Sentence], scores: dict[_Sentence, float]
) -> None:
    """For "what is X" and 1-4 word questions, a sentence that defines X ("X is ...",
    "X: ...", "X refers to ...") is worth more than one that merely mentions it."""
    subject = _QUESTION_WORDS.sub("", question).strip(" ?.!")
    if not subject or (subject == question.strip(" ?.!") and len(question.split()) > 4):
        return
    terms = tokenize(subject)
    if not terms:
        return
    for s in sentences:
        head = tokenize(s.text.split(",")[0])[: len(terms) + 3]
        # The subject's head noun ("topic" of "ROS 2 topic") opening the sentence.
        if scores[s] > 0 and terms[-1] in head[:3]:
            opening = " ".join(s.text.split()[: len(subject.split()) + 4])
            if re.search(rf"(?::|\b{_DEFINING})", opening, re.IGNORECASE):
                scores[s] += _DEFINITION_BONUS


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


def _worth_quoting(order: Sequence[_Sentence], scores: dict[_Sentence, float]) -> list[_Sentence]:
    """Stop when the next sentence adds little: after the best, only sentences scoring
    at least ``_KEEP_RATIO`` of it."""
    if not order or scores[order[0]] <= 0:
        return list(order)
    floor = _KEEP_RATIO * max(scores[s] for s in order)
    return [s for i, s in enumerate(order) if i == 0 or scores[s] >= floor]


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
            sentence = attrs.evolve(sentence, text=truncate(sentence.text, max_chars - marker))
            cost = len(sentence.text) + marker
        chosen.append(sentence)
        seen.add(key)
        used += cost
    return chosen
