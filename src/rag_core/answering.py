"""Answering a question from the documentation: retrieve, then compose — with a
chat model when one is configured and answering, else extractively."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence

import attrs

from rag_core.answers import Answer, AnswerMode, Citation, Passage, Usage
from rag_core.citations import citation_for, resolve, selection_citation
from rag_core.confidence import judge, missing
from rag_core.conversations import Message, Role
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.events import AnswerComplete, AnswerEvent, SourcesFound, TextDelta
from rag_core.extractive import NOTHING_FOUND, compose_extractive
from rag_core.ports import ChatMessage, ChatModel
from rag_core.prompting import NumberedSource, PromptBudget, grounded_messages, rewrite_messages
from rag_core.retrieval import Retrieval, Retriever

log = logging.getLogger(__name__)

REWRITE_MAX_TOKENS = 80


@attrs.frozen(slots=True)
class Grounding:
    """What one answer is grounded on: the numbered sources and how they were found."""

    question: str
    selected_text: str
    passages: list[Passage]
    sources: tuple[Citation, ...]
    texts: tuple[str, ...]
    retrieval: str
    degraded: tuple[str, ...]
    usage: Usage
    # The passages' neighbouring chunks, for the extractive composer (ranked after them).
    nearby: tuple[Passage, ...] = ()
    # The chat model failed already (the follow-up rewrite): not asked again.
    model_unavailable: tuple[str, ...] = ()

    @property
    def numbered(self) -> dict[int, Citation]:
        return {c.number: c for c in self.sources}


class Answerer:
    """Composes a cited answer for one question.

    With a chat model: a follow-up is first rewritten into a standalone query for
    retrieval, then the model answers from the numbered sources, and its ``[n]``
    markers are mapped to them (an invented number is dropped). Without a model,
    or when it is unavailable, the answer is extractive and ``degraded`` says why
    (each dependency once); a follow-up whose rewrite found the model unavailable is
    answered so without asking the model again.
    If retrieval is unavailable and the reader selected text, the answer comes from
    the selection alone; without a selection the DependencyUnavailable propagates.
    """

    def __init__(
        self,
        retriever: Retriever,
        chat_model: ChatModel | None = None,
        *,
        budget: PromptBudget | None = None,
    ) -> None:
        self._retriever = retriever
        self._chat_model = chat_model
        self._budget = budget or PromptBudget()

    @property
    def retrieval_mode(self) -> str:
        return self._retriever.mode

    async def answer(
        self, question: str, *, selected_text: str = "", history: Sequence[Message] = ()
    ) -> Answer:
        return await self.compose(await self.ground(question, selected_text, history), history)

    async def compose(self, grounding: Grounding, history: Sequence[Message] = ()) -> Answer:
        """The answer from ``grounding`` (see :meth:`ground`): generated, or extractive."""
        if self._chat_model is None or not grounding.sources:
            return self._extractive(grounding)
        if grounding.model_unavailable:
            return self._extractive(grounding, degraded=grounding.model_unavailable)
        try:
            completion = await self._chat_model.complete(self._messages(grounding, history))
        except DependencyUnavailable as exc:
            log.warning("chat model unavailable (%s); answering extractively", exc.reason)
            return self._extractive(grounding, degraded=(exc.dependency,))
        return self._generated(grounding, completion.text, completion.usage)

    async def stream(
        self, question: str, *, selected_text: str = "", history: Sequence[Message] = ()
    ) -> AsyncGenerator[AnswerEvent, None]:
        """SourcesFound, then TextDelta(s), then AnswerComplete. A model failure
        before its first delta falls back to an extractive answer; after it, the
        DependencyUnavailable propagates (the text so far cannot be unsaid)."""
        grounding = await self.ground(question, selected_text, history)
        yield SourcesFound(grounding.sources, grounding.retrieval)
        if self._chat_model is None or not grounding.sources or grounding.model_unavailable:
            answer = self._extractive(grounding, degraded=grounding.model_unavailable)
            yield TextDelta(answer.text)
            yield AnswerComplete(answer)
            return
        parts: list[str] = []
        usage = Usage()
        stream = self._chat_model.stream(self._messages(grounding, history))
        try:
            async for delta in stream:
                if delta.usage is not None:
                    usage = delta.usage
                if delta.text:
                    parts.append(delta.text)
                    yield TextDelta(delta.text)
        except DependencyUnavailable as exc:
            if parts:
                raise
            log.warning("chat model unavailable (%s); answering extractively", exc.reason)
            answer = self._extractive(grounding, degraded=(exc.dependency,))
            yield TextDelta(answer.text)
            yield AnswerComplete(answer)
            return
        finally:
            await stream.aclose()  # an early exit (client gone) cancels the upstream call
        yield AnswerComplete(self._generated(grounding, "".join(parts), usage))

    async def ground(
        self, question: str, selected_text: str = "", history: Sequence[Message] = ()
    ) -> Grounding:
        """Retrieve and number the sources for ``question``: what a model (or the
        extractive composer) answers from. Raises InvalidInput for a blank question."""
        if not question.strip():
            raise InvalidInput("the question is empty")
        query, usage, unavailable = await self._standalone(question, history)
        try:
            found = await self._retriever.search(query)
        except DependencyUnavailable as exc:
            if not selected_text.strip():
                raise
            found = Retrieval([], "none", (exc.dependency,))
        sources: list[Citation] = []
        texts: list[str] = []
        if selected_text.strip():
            sources.append(selection_citation(selected_text, 1))
            texts.append(selected_text)
        # A model reads each passage with its neighbours; the extractive composer reads
        # them as passages of their own, after the retrieved ones (measured: quoting from
        # the merged wider text picked worse sentences).
        wide, nearby = await self._retriever.surroundings(found.passages)
        for passage, read in zip(found.passages, wide, strict=True):
            sources.append(citation_for(passage, len(sources) + 1))
            texts.append(read.chunk.text)
        return Grounding(
            question=question,
            selected_text=selected_text,
            passages=found.passages,
            sources=tuple(sources),
            texts=tuple(texts),
            retrieval=found.mode,
            degraded=found.degraded,
            usage=usage,
            nearby=tuple(nearby),
            model_unavailable=unavailable,
        )

    async def _standalone(
        self, question: str, history: Sequence[Message]
    ) -> tuple[str, Usage, tuple[str, ...]]:
        """The retrieval query: a follow-up rewritten by the model when there is
        history, else the question itself (also when the rewrite fails, and then the
        model's dependency: this answer does not wait on that model a second time)."""
        if self._chat_model is None or not any(m.role is Role.USER for m in history):
            return question, Usage(), ()
        try:
            completion = await self._chat_model.complete(
                rewrite_messages(question, history), max_tokens=REWRITE_MAX_TOKENS
            )
        except DependencyUnavailable as exc:
            log.warning("chat model unavailable (%s); follow-up not rewritten", exc.reason)
            return question, Usage(), (exc.dependency,)
        rewritten = " ".join(completion.text.split())
        return (rewritten or question), completion.usage, ()

    def _messages(self, grounding: Grounding, history: Sequence[Message]) -> list[ChatMessage]:
        numbered = [
            NumberedSource(c.number, _label(c), text)
            for c, text in zip(grounding.sources, grounding.texts, strict=True)
        ]
        return grounded_messages(
            grounding.question,
            numbered,
            history,
            has_selection=bool(grounding.selected_text.strip()),
            budget=self._budget,
        )

    def _generated(self, grounding: Grounding, text: str, usage: Usage) -> Answer:
        cleaned, cited = resolve(text, grounding.numbered)
        uncovered, lacking = _coverage(grounding)
        return Answer(
            text=cleaned or NOTHING_FOUND,
            mode=AnswerMode.GENERATED,
            citations=cited,
            degraded=grounding.degraded,
            retrieval=grounding.retrieval,
            usage=grounding.usage + usage,
            # A model that cites none of its sources did not answer from them.
            uncertain=not cited or uncovered,
            missing_terms=lacking,
        )

    def _extractive(self, grounding: Grounding, degraded: tuple[str, ...] = ()) -> Answer:
        answer = compose_extractive(
            grounding.question,
            [*grounding.passages, *grounding.nearby],
            selected_text=grounding.selected_text,
        )
        uncovered, lacking = _coverage(grounding)
        return attrs.evolve(
            answer,
            # Each dependency once: the embedder and the chat model may be one server.
            degraded=tuple(dict.fromkeys(grounding.degraded + degraded)),
            retrieval=grounding.retrieval,
            usage=grounding.usage,
            uncertain=answer.uncertain or uncovered,
            missing_terms=lacking,
        )


def _coverage(grounding: Grounding) -> tuple[bool, tuple[str, ...]]:
    """Whether too little of the question is in what was retrieved, and the question's
    terms none of it holds (:mod:`rag_core.confidence`). A question about the reader's
    selection is never uncertain for it: the selection is its own source."""
    texts = [f"{p.chunk.breadcrumb}\n{p.chunk.text}" for p in grounding.passages]
    if grounding.selected_text.strip():
        return False, missing(grounding.question, [grounding.selected_text, *texts])
    return judge(grounding.question, texts)


def _label(citation: Citation) -> str:
    if citation.chunk_id is None:
        return citation.title
    crumbs = " > ".join(dict.fromkeys([citation.title, *citation.heading_path]))
    return f"{crumbs} ({citation.route})"
