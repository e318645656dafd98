"""The chat use case: answer a question and, for a signed-in user, keep the turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import attrs

from rag_core.answering import Answerer
from rag_core.answers import Answer, AnswerMode, Citation
from rag_core.conversations import Conversation, Message, Role
from rag_core.errors import InvalidInput
from rag_core.events import AnswerComplete, AnswerEvent, SourcesFound, TextDelta
from rag_core.history import HistoryService
from rag_core.insights import Insights
from rag_core.ports import Clock, ConversationStore, IdGenerator

TITLE_CHARS = 60


@attrs.frozen(slots=True)
class ChatTurn:
    answer: Answer
    session_id: str | None


class ChatService:
    """Anonymous questions are answered and not stored. A signed-in user's turn
    goes to the given session (404 if unknown, 403 if another user's), else to
    the user's most recent active session, else to a new one titled from the
    question; the last ``history_limit`` messages are given to the answerer.

    Every answer gets an id (``Answer.id``; a stored answer's message id). With
    ``insights``, each answer is logged for the site's author, in the background
    (best effort: a question log that is down costs the entry, never the answer)."""

    def __init__(
        self,
        answerer: Answerer,
        conversations: ConversationStore,
        clock: Clock,
        ids: IdGenerator,
        *,
        history_limit: int = 10,
        insights: Insights | None = None,
    ) -> None:
        self._answerer = answerer
        self._conversations = conversations
        self._clock = clock
        self._ids = ids
        self._history_limit = history_limit
        self._history = HistoryService(conversations)
        self._insights = insights

    async def ask(
        self,
        question: str,
        *,
        selected_text: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> ChatTurn:
        _check_question(question)
        if user_id is None:
            answer = await self._answerer.answer(question, selected_text=selected_text)
            answer = self._logged(question, answer, None)
            return ChatTurn(answer=answer, session_id=None)
        session = await self.session_for(user_id, session_id, question)
        history = await self._conversations.messages(session.id, limit=self._history_limit)
        answer = await self._answerer.answer(question, selected_text=selected_text, history=history)
        answer = self._logged(question, answer, user_id)
        await self._conversations.append(
            session.id, self._turn(session.id, question, selected_text, answer)
        )
        return ChatTurn(answer=answer, session_id=session.id)

    async def stream(
        self,
        question: str,
        *,
        selected_text: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
        history: Sequence[Message] = (),
    ) -> AsyncGenerator[AnswerEvent, None]:
        """The answer as events (see rag_core.events); the last one carries the
        session id. If the consumer stops early (a client that disconnects), the
        text answered so far is still stored for a signed-in user. ``history`` is
        the conversation so far for an anonymous client that keeps its own (the
        OpenAI-compatible route); a signed-in user's comes from the session."""
        _check_question(question)
        session = None
        if user_id is not None:
            session = await self.session_for(user_id, session_id, question)
            history = await self._conversations.messages(session.id, limit=self._history_limit)
        parts: list[str] = []
        sources: tuple[Citation, ...] = ()
        final: Answer | None = None
        try:
            async for event in self._answerer.stream(
                question, selected_text=selected_text, history=history
            ):
                if isinstance(event, SourcesFound):
                    sources = event.sources
                elif isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, AnswerComplete):
                    final = self._logged(question, event.answer, user_id)
                    event = AnswerComplete(final, session.id if session else None)
                yield event
        finally:
            if session is not None and (final is not None or parts):
                answer = final or Answer(
                    text="".join(parts),
                    mode=AnswerMode.GENERATED,
                    citations=sources,
                    degraded=("interrupted",),
                )
                turn = self._turn(session.id, question, selected_text, answer)
                # Shielded: a cancelled request must not cancel the write of its turn.
                await asyncio.shield(self._conversations.append(session.id, turn))

    async def session_for(
        self, user_id: str, session_id: str | None, question: str
    ) -> Conversation:
        if session_id:
            return await self._history.owned(user_id, session_id)
        recent = await self._conversations.list_sessions(user_id, limit=1, offset=0)
        if recent and recent[0].is_active:
            return recent[0]
        title = " ".join(question.split())[:TITLE_CHARS] or "New chat"
        return await self._conversations.create_session(user_id, title)

    def _turn(
        self, session_id: str, question: str, selected_text: str, answer: Answer
    ) -> list[Message]:
        now = self._clock.now()
        return [
            Message(
                id=self._ids.new_id(),
                session_id=session_id,
                role=Role.USER,
                content=question,
                created_at=now,
                selected_text=selected_text,
            ),
            Message(
                id=answer.id or self._ids.new_id(),
                session_id=session_id,
                role=Role.ASSISTANT,
                content=answer.text,
                created_at=now,
                sources=answer.citations,
            ),
        ]

    def _logged(self, question: str, answer: Answer, user_id: str | None) -> Answer:
        """``answer`` with its id, logged (in the background) when there is a question log."""
        answer = attrs.evolve(answer, id=self._ids.new_id())
        if self._insights is not None:
            self._insights.record_soon(answer.id, question, answer, user_id=user_id)
        return answer


def _check_question(question: str) -> None:
    """Before any session is chosen or created: a refused question stores nothing."""
    if not question.strip():
        raise InvalidInput("the question is empty")
