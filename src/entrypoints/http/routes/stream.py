"""`POST /chat/stream`: the /chat request answered as Server-Sent Events.

Events: ``sources`` (every numbered source), ``delta`` (text pieces), ``citations``
(the sources actually cited), ``final`` (session id, mode, retrieval, usage,
degraded), then ``done``. A failure after the stream has started arrives as an
``error`` event. A client that disconnects cancels the generation upstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from entrypoints.http.deps import ContainerDep
from entrypoints.http.rate_limit import limit
from entrypoints.http.responses import ASKING
from entrypoints.http.routes.auth import OptionalPrincipalDep
from entrypoints.http.schemas import StreamRequest
from entrypoints.http.sources import SiteDep, error_json, usage_json
from rag_core.errors import RagError
from rag_core.events import AnswerComplete, AnswerEvent, SourcesFound, TextDelta
from rag_core.history import citation_view

router = APIRouter(tags=["chat"])

HEARTBEAT_SECONDS = 15


@router.post(
    "/chat/stream",
    # The handler returns its own EventSourceResponse. Response (no media type) as the
    # response_class: FastAPI files the error models under application/json, where
    # they are sent, not under text/event-stream, and declares no JSON 200.
    response_class=Response,
    dependencies=[Depends(limit("chat"))],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "SSE stream"},
        **ASKING,
    },
)
async def chat_stream(
    body: StreamRequest, container: ContainerDep, principal: OptionalPrincipalDep, site: SiteDep
) -> EventSourceResponse:
    events = container.chat.stream(
        body.query,
        selected_text=body.selected_text,
        session_id=body.session_id,
        user_id=principal.user_id if principal else None,
    )
    # Errors before the first event (bad session, index down) are plain HTTP errors.
    first = await anext(events)
    return EventSourceResponse(_serialise(first, events, site), ping=HEARTBEAT_SECONDS)


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps(data, ensure_ascii=False))


async def _serialise(
    first: AnswerEvent, rest: AsyncGenerator[AnswerEvent, None], site: str | None
) -> AsyncIterator[ServerSentEvent]:
    try:
        yield _view(first, site)
        async for event in rest:
            if isinstance(event, AnswerComplete):
                answer = event.answer
                cited = [citation_view(c, site) for c in answer.citations]
                yield _event("citations", {"citations": cited})
                yield _event(
                    "final",
                    {
                        "session_id": event.session_id,
                        "response": answer.text,
                        "mode": answer.mode.value,
                        "retrieval": answer.retrieval,
                        "degraded": list(answer.degraded),
                        "uncertain": answer.uncertain,
                        "answer_id": answer.id,
                        "usage": usage_json(answer),
                    },
                )
            else:
                yield _view(event, site)
        yield _event("done", {})
    except RagError as exc:
        yield _event("error", error_json(exc))
    finally:
        await rest.aclose()


def _view(event: AnswerEvent, site: str | None) -> ServerSentEvent:
    if isinstance(event, SourcesFound):
        sources = [citation_view(c, site) for c in event.sources]
        return _event("sources", {"sources": sources, "retrieval": event.retrieval})
    if isinstance(event, TextDelta):
        return _event("delta", {"text": event.text})
    raise TypeError(f"unexpected event {type(event).__name__}")
