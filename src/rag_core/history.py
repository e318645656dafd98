"""Chat history of a signed-in user: list, read, rename, export and delete
sessions. Every access checks ownership (NotFound for an unknown session,
Forbidden for another user's).

A message's sources are shown as text (:func:`source_text`, e.g.
``[1] Nodes and Topics — /docs/week3/ros2-nodes-topics``): the textbook's site renders
each one as a list item, and a JSON export names them the same way, with the
structured citations beside them."""

from __future__ import annotations

import enum
import json
from typing import Any

from rag_core.answers import Citation
from rag_core.codec import citation_to_dict, message_to_dict
from rag_core.conversations import Conversation, Message
from rag_core.errors import Forbidden, InvalidInput, NotFound
from rag_core.ports import ConversationStore

MAX_TITLE = 200


class ExportFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class HistoryService:
    def __init__(self, conversations: ConversationStore) -> None:
        self._conversations = conversations

    async def owned(self, user_id: str, session_id: str) -> Conversation:
        session = await self._conversations.get_session(session_id)
        if session is None:
            raise NotFound(f"no chat session {session_id}")
        if session.user_id != user_id:
            raise Forbidden("that chat session belongs to another user")
        return session

    async def sessions(self, user_id: str, limit: int, offset: int) -> list[Conversation]:
        return await self._conversations.list_sessions(user_id, limit=limit, offset=offset)

    async def create(self, user_id: str, title: str | None) -> Conversation:
        return await self._conversations.create_session(user_id, _title(title or "New chat"))

    async def read(self, user_id: str, session_id: str) -> tuple[Conversation, list[Message]]:
        session = await self.owned(user_id, session_id)
        return session, await self._conversations.messages(session.id)

    async def rename(self, user_id: str, session_id: str, title: str) -> Conversation:
        await self.owned(user_id, session_id)
        return await self._conversations.rename(session_id, _title(title))

    async def delete(self, user_id: str, session_id: str) -> None:
        await self.owned(user_id, session_id)
        await self._conversations.delete_session(session_id)

    async def delete_all(self, user_id: str) -> int:
        return await self._conversations.delete_user_history(user_id)

    async def export(
        self, user_id: str, session_id: str, fmt: ExportFormat, *, site: str | None = None
    ) -> str:
        """The session as text or JSON; source links are absolute under ``site`` (the
        public site's base URL), else site routes."""
        session, messages = await self.read(user_id, session_id)
        if fmt is ExportFormat.JSON:
            exported = {
                "session": {"id": session.id, "title": session.title},
                "messages": [_exported(m, site) for m in messages],
            }
            return json.dumps(exported, ensure_ascii=False, indent=2)
        lines = [f"# {session.title}", ""]
        for m in messages:
            lines.append(f"[{m.created_at:%Y-%m-%d %H:%M}] {m.role.value}: {m.content}")
            lines.extend(f"    {source_text(c, site)}" for c in m.sources)
        return "\n".join(lines) + "\n"


def page_link(route: str, site: str | None = None) -> str:
    """A page's link: ``site`` (the public site's base URL, e.g.
    ``https://book.example/textbook``) joined with the site route, or the route itself
    without one. A route that is already absolute, or empty (no page), is kept."""
    if not site or not route or "://" in route or route.startswith("//"):
        return route
    return site.rstrip("/") + ("" if route.startswith("/") else "/") + route


def source_text(citation: Citation, site: str | None = None) -> str:
    """A source as one line of text: ``[n] Title — link`` (just ``[n] Title`` for one
    with no page, such as the reader's selected text)."""
    label = f"[{citation.number}] {citation.title}"
    return f"{label} — {page_link(citation.route, site)}" if citation.route else label


def citation_view(citation: Citation, site: str | None = None) -> dict[str, Any]:
    """A citation as shown: its dict form (:mod:`rag_core.codec`) with the site route
    replaced by ``url``, the page's link (:func:`page_link`)."""
    view: dict[str, Any] = {}
    for key, value in citation_to_dict(citation).items():
        if key == "route":
            key, value = "url", page_link(value, site)
        view[key] = value
    return view


def message_view(message: Message, site: str | None = None) -> dict[str, Any]:
    """A message as shown: its dict form with ``sources`` as text (:func:`source_text`)
    and ``citations``, the same sources structured (:func:`citation_view`)."""
    view = message_to_dict(message)
    view["sources"] = [source_text(c, site) for c in message.sources]
    view["citations"] = [citation_view(c, site) for c in message.sources]
    return view


def _exported(message: Message, site: str | None) -> dict[str, Any]:
    view = message_view(message, site)
    del view["id"], view["session_id"]
    view["citations"] = [{k: c[k] for k in ("number", "title", "url")} for c in view["citations"]]
    return view


def _title(title: str) -> str:
    cleaned = " ".join(title.split())
    if not cleaned:
        raise InvalidInput("the title is empty")
    if len(cleaned) > MAX_TITLE:
        raise InvalidInput(f"the title is longer than {MAX_TITLE} characters")
    return cleaned
