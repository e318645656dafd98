"""Answering a question from the documentation: retrieve, then compose."""

from __future__ import annotations

from collections.abc import Sequence

from rag_core.answers import Answer
from rag_core.conversations import Message
from rag_core.errors import DependencyUnavailable
from rag_core.extractive import compose_extractive
from rag_core.ports import ChatModel
from rag_core.retrieval import Retriever


class Answerer:
    """Composes a cited answer for one question.

    Without a chat model the answer is extractive (``mode="extractive"``). If
    retrieval is unavailable and the reader selected text, the answer comes from
    the selection alone (``mode="selection"``) and ``degraded`` names the index;
    without a selection the DependencyUnavailable propagates.
    """

    def __init__(self, retriever: Retriever, chat_model: ChatModel | None = None) -> None:
        self._retriever = retriever
        self._chat_model = chat_model

    @property
    def retrieval_mode(self) -> str:
        return self._retriever.mode

    async def answer(
        self, question: str, *, selected_text: str = "", history: Sequence[Message] = ()
    ) -> Answer:
        try:
            passages = await self._retriever.retrieve(question)
        except DependencyUnavailable as exc:
            if not selected_text.strip():
                raise
            answer = compose_extractive(question, [], selected_text=selected_text)
            return _with(answer, degraded=(exc.dependency,), retrieval="none")
        answer = compose_extractive(question, passages, selected_text=selected_text)
        return _with(answer, retrieval=self._retriever.mode)


def _with(answer: Answer, *, retrieval: str, degraded: tuple[str, ...] = ()) -> Answer:
    return Answer(
        text=answer.text,
        mode=answer.mode,
        citations=answer.citations,
        degraded=answer.degraded + degraded,
        retrieval=retrieval,
    )
