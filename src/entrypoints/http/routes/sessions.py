"""Chat history routes (Bearer required). A session belongs to one user: 404 for
an unknown session, 403 for another user's."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from entrypoints.http.deps import ContainerDep
from entrypoints.http.responses import BAD_BODY, SESSION_OWNER, SIGN_IN_REQUIRED, UNAVAILABLE
from entrypoints.http.routes.auth import PrincipalDep
from entrypoints.http.schemas import Text
from entrypoints.http.sources import SiteDep, with_sources
from rag_core.codec import conversation_to_dict
from rag_core.conversations import Message, Role
from rag_core.history import MAX_TITLE, ExportFormat, message_view

router = APIRouter(
    prefix="/api/chat", tags=["chat history"], responses=SIGN_IN_REQUIRED | UNAVAILABLE
)


class NewSession(BaseModel):
    title: Text | None = Field(None, max_length=MAX_TITLE)


class Rename(BaseModel):
    title: Text = Field(min_length=1, max_length=MAX_TITLE)


def message_json(
    m: Message, site: str | None = None, *, append_sources: bool = False
) -> dict[str, Any]:
    """The history's view of a message (:func:`rag_core.history.message_view`):
    ``sources`` are text (``[1] Title — link``: the site renders each as a list item, an
    object crashes it); ``citations`` are the same sources, structured. With
    ``append_sources``, an answer's ``content`` ends with the Sources list ``/chat``
    gave it (the stored message is the answer alone)."""
    view = message_view(m, site)
    if append_sources and m.role is Role.ASSISTANT:
        view["content"] = with_sources(m.content, m.sources, site)
    return view


@router.get("/sessions")
async def list_sessions(
    container: ContainerDep,
    principal: PrincipalDep,
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=100_000),
) -> dict[str, Any]:
    sessions = await container.history.sessions(principal.user_id, limit, offset)
    return {"sessions": [conversation_to_dict(s) for s in sessions]}


@router.post("/sessions", responses=BAD_BODY)
async def create_session(
    body: NewSession, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    return conversation_to_dict(await container.history.create(principal.user_id, body.title))


@router.get("/sessions/{session_id}", responses=SESSION_OWNER)
async def get_session(
    session_id: str,
    request: Request,
    container: ContainerDep,
    principal: PrincipalDep,
    site: SiteDep,
    append_sources: bool | None = Query(
        None,
        description="End each answer's content with its Sources list, as /chat does; "
        "unset: the server's APPEND_SOURCES. Clients that read `sources` pass false.",
    ),
) -> dict[str, Any]:
    """A session and its messages; an answer's ``content`` ends with its Sources list
    unless ``append_sources`` (or APPEND_SOURCES) is off: the textbook site shows only
    ``content`` when it reopens a chat."""
    if append_sources is None:
        append_sources = bool(getattr(request.app.state, "append_sources", False))
    session, messages = await container.history.read(principal.user_id, session_id)
    return {
        "session": conversation_to_dict(session),
        "messages": [message_json(m, site, append_sources=append_sources) for m in messages],
    }


@router.delete("/sessions/{session_id}", responses=SESSION_OWNER)
async def delete_session(
    session_id: str, container: ContainerDep, principal: PrincipalDep
) -> dict[str, bool]:
    await container.history.delete(principal.user_id, session_id)
    return {"success": True}


@router.patch("/sessions/{session_id}/title", responses=BAD_BODY | SESSION_OWNER)
async def rename_session(
    session_id: str, body: Rename, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    return conversation_to_dict(
        await container.history.rename(principal.user_id, session_id, body.title)
    )


@router.get("/sessions/{session_id}/export", responses=SESSION_OWNER)
async def export_session(
    session_id: str,
    container: ContainerDep,
    principal: PrincipalDep,
    site: SiteDep,
    format: Literal["text", "json"] = "text",
) -> dict[str, str]:
    content = await container.history.export(
        principal.user_id, session_id, ExportFormat(format), site=site
    )
    return {"format": format, "content": content}


@router.delete("/history")
async def delete_history(container: ContainerDep, principal: PrincipalDep) -> dict[str, Any]:
    deleted = await container.history.delete_all(principal.user_id)
    return {"success": True, "deleted_sessions": deleted}
