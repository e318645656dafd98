"""The events of a streamed answer: one model, several serialisers (SSE, the
OpenAI-compatible stream, the plain JSON answer) are views of it."""

from __future__ import annotations

import attrs

from rag_core.answers import Answer, Citation


@attrs.frozen(slots=True)
class SourcesFound:
    """First: every numbered source given to the composer (``[n]`` refers to these)."""

    sources: tuple[Citation, ...]
    retrieval: str


@attrs.frozen(slots=True)
class TextDelta:
    text: str


@attrs.frozen(slots=True)
class AnswerComplete:
    """Last: the final answer (its citations are the sources actually cited) and,
    for a signed-in user, the session it was stored in."""

    answer: Answer
    session_id: str | None = None


AnswerEvent = SourcesFound | TextDelta | AnswerComplete
