"""Numbered sources and the ``[n]`` markers that cite them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rag_core.answers import Citation, Passage
from rag_core.prose import snippet

SELECTION_TITLE = "Selected text"
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+(?=[.,;:!?])")


def citation_for(passage: Passage, number: int) -> Citation:
    chunk = passage.chunk
    return Citation(
        number=number,
        title=chunk.title,
        route=chunk.route,
        heading_path=chunk.heading_path,
        snippet=snippet(chunk.text),
        score=passage.score,
        chunk_id=chunk.id,
        document_id=chunk.document_id,
    )


def selection_citation(text: str, number: int = 1) -> Citation:
    """The reader's selected text as a source (no chunk, no page)."""
    return Citation(number, SELECTION_TITLE, "", (), snippet(text), 1.0, None, None)


def resolve(text: str, sources: Mapping[int, Citation]) -> tuple[str, tuple[Citation, ...]]:
    """Keep the markers that name a given source and drop the others.

    ``[1, 9]`` with no source 9 becomes ``[1]``; ``[9]`` alone disappears. Returns
    the cleaned text and the cited sources in order of first citation. A model
    that invents a source number never yields a source that does not exist.
    """
    cited: dict[int, Citation] = {}

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if n in sources]
        for n in valid:
            cited.setdefault(n, sources[n])
        return "".join(f"[{n}]" for n in valid)

    cleaned = _MARKER.sub(keep, text)
    if cleaned != text:
        cleaned = _SPACE_BEFORE_PUNCTUATION.sub("", cleaned)
    return cleaned.strip(), tuple(cited.values())
