"""`POST /chat`: the existing frontend's chat call."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from entrypoints.http.deps import ContainerDep
from entrypoints.http.rate_limit import limit
from entrypoints.http.responses import ASKING
from entrypoints.http.routes.auth import OptionalPrincipalDep
from entrypoints.http.schemas import ChatRequest, ChatResponse
from entrypoints.http.sources import SiteDep

router = APIRouter(tags=["chat"])


@router.post(
    "/chat",
    response_model=ChatResponse,
    dependencies=[Depends(limit("chat"))],
    responses=ASKING,
)
async def chat(
    body: ChatRequest,
    request: Request,
    container: ContainerDep,
    principal: OptionalPrincipalDep,
    site: SiteDep,
) -> ChatResponse:
    """Answer from the documentation with numbered sources. Anonymous questions
    are not stored; a signed-in user's turn goes to the given session (404 if
    unknown, 403 if another user's), else their latest active one, else a new one.
    A Bearer token that is present but invalid is a 401.

    ``response`` ends with a linked ``Sources:`` list (the site's widget shows only
    the text) unless ``append_sources`` is false, or null with APPEND_SOURCES off.
    What is stored is the answer alone."""
    turn = await container.chat.ask(
        body.query,
        selected_text=body.selected_text,
        session_id=body.session_id,
        user_id=principal.user_id if principal else None,
    )
    append = body.append_sources
    if append is None:
        append = bool(getattr(request.app.state, "append_sources", False))
    return ChatResponse.of(turn.answer, turn.session_id, site, append_sources=append)
