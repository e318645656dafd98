"""`POST /v1/chat/completions` and `GET /v1/models`: the RAG backend as an
OpenAI-compatible model. The last user message is the question, earlier
messages are the history; sources travel in an extension field (``sources``)
that strict OpenAI clients ignore. Nothing is stored (no session)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from entrypoints.http.deps import ContainerDep
from entrypoints.http.rate_limit import limit_by_address
from entrypoints.http.responses import BAD_BODY, TOO_MANY_REQUESTS, UNAVAILABLE
from entrypoints.http.schemas import MAX_QUERY, Text
from entrypoints.http.sources import SiteDep, error_json, usage_json
from rag_core.conversations import Message, Role
from rag_core.errors import InvalidInput, RagError
from rag_core.events import AnswerComplete, AnswerEvent, SourcesFound, TextDelta
from rag_core.history import citation_view

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

MODEL_ID = "rag-backend"
MAX_MESSAGES = 50


class CompletionMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Text | None = Field(None, max_length=MAX_QUERY * 5)


class CompletionRequest(BaseModel):
    model: str = Field(MODEL_ID, max_length=200)
    messages: list[CompletionMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False


@router.get("/models")
async def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "rag-backend"}],
    }


# By address, not by user: OpenAI clients always send `Authorization: Bearer <key>`.
@router.post(
    "/chat/completions",
    response_model=None,
    dependencies=[Depends(limit_by_address("chat"))],
    responses={
        200: {
            "description": "A `chat.completion` object; with `stream: true`, "
            "`chat.completion.chunk` events as Server-Sent Events, then `[DONE]`.",
            "content": {"application/json": {}, "text/event-stream": {}},
        },
    }
    | BAD_BODY
    | TOO_MANY_REQUESTS
    | UNAVAILABLE,
)
async def completions(
    body: CompletionRequest, container: ContainerDep, site: SiteDep
) -> dict[str, Any] | EventSourceResponse:
    question, history = _split(body.messages)
    events = container.chat.stream(question, history=history)
    first = await anext(events)  # errors before the stream starts are plain HTTP errors
    meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    if body.stream:
        return EventSourceResponse(_chunks(meta, first, events, site))
    sources: list[dict[str, Any]] = []
    async for event in _chain(first, events):
        if isinstance(event, AnswerComplete):
            answer = event.answer
            sources = [citation_view(c, site) for c in answer.citations]
            return {
                **meta,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage_json(answer),
                "sources": sources,
                "mode": answer.mode.value,
                "uncertain": answer.uncertain,
                "answer_id": answer.id,
            }
    raise RuntimeError("the answer stream ended without a final answer")


def _split(messages: list[CompletionMessage]) -> tuple[str, list[Message]]:
    users = [i for i, m in enumerate(messages) if m.role == "user" and (m.content or "").strip()]
    if not users:
        raise InvalidInput("messages must contain a user message with content")
    last = users[-1]
    question = messages[last].content or ""
    if len(question) > MAX_QUERY:
        raise InvalidInput(f"the last user message is longer than {MAX_QUERY} characters")
    now = datetime.now(UTC)
    history = [
        Message(str(i), "openai", Role(m.role), m.content or "", now)
        for i, m in enumerate(messages[:last])
        if m.role in ("user", "assistant") and m.content
    ]
    return question, history


async def _chain(
    first: AnswerEvent, rest: AsyncGenerator[AnswerEvent, None]
) -> AsyncIterator[AnswerEvent]:
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        await rest.aclose()


async def _chunks(
    meta: dict[str, Any],
    first: AnswerEvent,
    rest: AsyncGenerator[AnswerEvent, None],
    site: str | None,
) -> AsyncIterator[ServerSentEvent]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEvent:
        body = {
            **meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return ServerSentEvent(data=json.dumps(body, ensure_ascii=False))

    try:
        async for event in _chain(first, rest):
            if isinstance(event, SourcesFound):
                sources = [citation_view(c, site) for c in event.sources]
                yield chunk({"role": "assistant", "content": ""}, sources=sources)
            elif isinstance(event, TextDelta):
                yield chunk({"content": event.text})
            elif isinstance(event, AnswerComplete):
                cited = [citation_view(c, site) for c in event.answer.citations]
                yield chunk(
                    {},
                    "stop",
                    usage=usage_json(event.answer),
                    sources=cited,
                    uncertain=event.answer.uncertain,
                    answer_id=event.answer.id,
                )
    except RagError as exc:
        yield ServerSentEvent(data=json.dumps({"error": error_json(exc)}))
    yield ServerSentEvent(data="[DONE]")
