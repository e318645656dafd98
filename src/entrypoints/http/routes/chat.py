"""`POST /chat`: the existing frontend's chat call."""

from __future__ import annotations

from fastapi import APIRouter

from entrypoints.http.deps import ContainerDep
from entrypoints.http.schemas import ChatRequest, ChatResponse

router = APIRouter(tags=["chat"])


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, container: ContainerDep) -> ChatResponse:
    """Answer from the documentation with numbered sources. Anonymous questions
    are not stored."""
    turn = await container.chat.ask(
        body.query, selected_text=body.selected_text, session_id=body.session_id
    )
    return ChatResponse.of(turn.answer, turn.session_id)
