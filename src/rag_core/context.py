"""Rank small, read big: a retrieved chunk widened with the chunks around it.

Small chunks rank well (their words are about one thing), but the sentence that
answers is often in the chunk before or after, under the same heading. So what
reaches the model, and the extractive composer, is each passage's chunk joined
with its neighbours in the document — consecutive ordinals within the passage's
parent section — nearest first, within a character budget per passage.

The extractive composer quotes sentences, so it reads the neighbours as passages
of their own (:func:`neighbours`, with their own headings), ranked after the
retrieved ones and worth ``NEIGHBOUR_WEIGHT`` of their score: the list under
"Key Features of Gazebo" can answer when retrieval found the section's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from rag_core.answers import Passage
from rag_core.documents import Chunk

_MAX_OVERLAP = 400  # the chunker repeats at most its overlap (200 chars by default)
_MIN_OVERLAP = 12  # shorter matches are chance ("s" ending one chunk and starting the next)
NEIGHBOUR_WEIGHT = 0.5
REACH = (
    6  # chunks either side of a passage that are read to widen it (the index returns only those)
)
_NEIGHBOUR_STEPS = (1, -1, 2, -2)


def widen(passages: Sequence[Passage], stored: Sequence[Chunk], max_chars: int) -> list[Passage]:
    """``passages`` with each chunk's text widened from ``stored`` (the chunks of
    their documents), at most ``max_chars`` per passage (a chunk already longer
    stays as it is). Neighbours that are retrieved passages themselves are left to
    them; the overlap the chunker repeats between neighbours is not repeated."""
    by_position = {(c.document_id, c.ordinal): c for c in stored}
    retrieved = {p.chunk.id for p in passages}
    return [
        attrs.evolve(
            p,
            chunk=attrs.evolve(p.chunk, text=_widened(p.chunk, by_position, retrieved, max_chars)),
        )
        for p in passages
    ]


def neighbours(passages: Sequence[Passage], stored: Sequence[Chunk]) -> list[Passage]:
    """The chunks next to ``passages`` (up to two either side, within each passage's
    parent section) that were not retrieved, each once: passages ranked after the
    retrieved ones, in their order and nearest first, scored ``NEIGHBOUR_WEIGHT`` of
    the passage they neighbour."""
    by_position = {(c.document_id, c.ordinal): c for c in stored}
    seen = {p.chunk.id for p in passages}
    found: list[Passage] = []
    for passage in passages:
        chunk = passage.chunk
        section = chunk.heading_path[:-1] or chunk.heading_path
        for step in _NEIGHBOUR_STEPS:
            neighbour = by_position.get((chunk.document_id, chunk.ordinal + step))
            if (
                neighbour is None
                or neighbour.id in seen
                or neighbour.heading_path[: len(section)] != section
            ):
                continue
            seen.add(neighbour.id)
            rank = len(passages) + len(found) + 1
            found.append(Passage(neighbour, passage.score * NEIGHBOUR_WEIGHT, rank))
    return found


def _widened(
    chunk: Chunk, by_position: dict[tuple[str, int], Chunk], retrieved: set[str], max_chars: int
) -> str:
    section = chunk.heading_path[:-1] or chunk.heading_path
    before: list[Chunk] = []
    after: list[Chunk] = []
    size = len(chunk.text)
    steps = {-1: True, 1: True}  # direction -> still growing
    distance = 0
    while any(steps.values()):
        distance += 1
        for direction in (1, -1):
            if not steps[direction]:
                continue
            neighbour = by_position.get((chunk.document_id, chunk.ordinal + direction * distance))
            if (
                neighbour is None
                or neighbour.id in retrieved
                or neighbour.heading_path[: len(section)] != section
                or size + len(neighbour.text) + 2 > max_chars
            ):
                steps[direction] = False
                continue
            (after if direction == 1 else before).append(neighbour)
            size += len(neighbour.text) + 2
    parts = [c.text for c in reversed(before)] + [chunk.text] + [c.text for c in after]
    text = parts[0]
    for part in parts[1:]:
        text = f"{text}\n\n{part[_overlap(text, part) :].lstrip()}"
    return text


def _overlap(text: str, following: str) -> int:
    """How many leading chars of ``following`` repeat the end of ``text`` (the longest
    such run from ``_MIN_OVERLAP`` to ``_MAX_OVERLAP`` chars; 0 for none): the earliest
    place in ``text``'s tail where ``following``'s opening recurs and runs to the end."""
    limit = min(len(text), len(following), _MAX_OVERLAP)
    if limit < _MIN_OVERLAP:
        return 0
    tail = text[-limit:]
    opening = following[:_MIN_OVERLAP]
    start = tail.find(opening)
    while 0 <= start <= limit - _MIN_OVERLAP:
        if following.startswith(tail[start:]):
            return limit - start
        start = tail.find(opening, start + 1)
    return 0
