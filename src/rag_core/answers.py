"""Retrieved passages and the cited answers composed from them."""

from __future__ import annotations

import enum

import attrs

from rag_core.documents import Chunk


class AnswerMode(enum.StrEnum):
    """How an answer was made."""

    GENERATED = "generated"  # written by a chat model from retrieved passages
    EXTRACTIVE = "extractive"  # best sentences of retrieved passages, no model
    SELECTION = "selection"  # from the reader's selected text alone


@attrs.frozen(slots=True)
class Passage:
    """A chunk returned by a search, with its score and 1-based rank."""

    chunk: Chunk
    score: float
    rank: int


@attrs.frozen(slots=True)
class Citation:
    """A numbered source of an answer; ``number`` is the ``[n]`` used in its text.

    ``chunk_id`` is ``None`` only for the reader's own selected text.
    """

    number: int
    title: str
    route: str
    heading_path: tuple[str, ...]
    snippet: str
    score: float
    chunk_id: str | None
    document_id: str | None


@attrs.frozen(slots=True)
class Usage:
    """Tokens a model call consumed (0 when the server does not say, or no model ran)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@attrs.frozen(slots=True)
class Answer:
    """A composed answer.

    Every ``[n]`` in ``text`` resolves to the citation whose ``number`` is n.
    ``degraded`` names what was unavailable while answering (empty when nothing was).
    ``uncertain``: the answer does not stand on what was found (see
    :mod:`rag_core.confidence`), so a client can say so; ``missing_terms``: the
    question's terms (stemmed) that none of its sources holds.
    """

    text: str
    mode: AnswerMode
    citations: tuple[Citation, ...] = ()
    degraded: tuple[str, ...] = ()
    retrieval: str = "lexical"
    usage: Usage = attrs.field(factory=Usage)
    uncertain: bool = False
    missing_terms: tuple[str, ...] = ()
    id: str = ""  # given by ChatService: what feedback names
