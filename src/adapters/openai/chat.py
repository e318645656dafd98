"""The ChatModel port over an OpenAI-compatible ``/chat/completions`` endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import openai

from adapters.openai.client import probe_server
from adapters.openai.errors import call, timed_out, translate
from adapters.openai.retry import DeadlineExceeded, RetryPolicy, within
from adapters.openai.wire import (
    JSON,
    EventStream,
    first_text,
    malformed,
    open_stream,
    post_json,
    usage_of,
)
from rag_core.conversations import Role
from rag_core.ports import ChatMessage, Completion, Delta, Usage


class OpenAIChatModel:
    """Implements :class:`rag_core.ports.ChatModel` with ``POST /chat/completions``.

    ``complete`` returns the first choice's text ("" if the server sent none) and
    its usage (zeros if the server does not report it). ``stream`` yields one
    Delta per non-empty content delta, then always a final ``Delta("", usage)``;
    usage is asked for with ``stream_options.include_usage``. Closing the stream
    early (``aclose()``, or cancelling the consuming task) closes the HTTP
    response, so the server sees the client go and stops generating.
    ``temperature=None`` leaves it to the server (models that refuse one).
    ``max_tokens`` is sent as ``max_tokens``, which compatible servers all read.
    Answers are read as plain JSON (``adapters.openai.wire``), not SDK models.

    Errors and timing: calls are retried per ``retry`` on connection errors,
    timeouts, 408/429/5xx (honouring Retry-After); a stream only until its first
    content delta arrives, never after text was yielded. Every wait for bytes is
    bounded by the client's read timeout. Deadlines, each across every try and
    backoff: ``first_token_timeout`` until the first text (or the end of an empty
    reply), ``answer_timeout`` until the last; when either is set, ``complete``
    reads its reply as a stream too (``stream: true``), so that a server which
    accepts the request and never answers fails after ``first_token_timeout``
    while a long answer may take up to ``answer_timeout``. A spent deadline raises
    DependencyUnavailable("openai", "DeadlineExceeded"), inside the caller's
    circuit breaker. What is left raises
    DependencyUnavailable("openai", <error class>); a request the server refuses
    (400/413/422, e.g. a context too long) raises InvalidInput. Messages never
    contain the API key or the URL.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        retry: RetryPolicy,
        temperature: float | None = 0.2,
        first_token_timeout: float | None = None,
        answer_timeout: float | None = None,
        probe_timeout: float | None = None,
    ) -> None:
        for name, value in (
            ("first_token_timeout", first_token_timeout),
            ("answer_timeout", answer_timeout),
            ("probe_timeout", probe_timeout),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive seconds, not {value}")
        self._client = client
        self._model = model
        self._retry = retry
        self._temperature = temperature
        self._first_token = first_token_timeout
        self._answer = answer_timeout
        self._probe_timeout = probe_timeout

    @property
    def model(self) -> str:
        return self._model

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        if self._first_token is None and self._answer is None:
            answer = await call(
                self._retry,
                lambda: post_json(
                    self._client, "/chat/completions", self._body(messages, max_tokens)
                ),
                label="openai chat completion",
                secret=self._client.api_key,
            )
            return Completion(text=first_text(answer, "message"), usage=usage_of(answer) or Usage())
        # With deadlines the reply is read as a stream: its first token tells a model
        # that is writing a long answer from one that will never answer.
        parts: list[str] = []
        usage = Usage()
        deltas = self._deltas(messages, max_tokens, label="openai chat completion")
        try:
            async for delta in deltas:
                parts.append(delta.text)
                usage = delta.usage or usage
        finally:
            await deltas.aclose()
        return Completion(text="".join(parts), usage=usage)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        return self._deltas(messages, max_tokens, label="openai chat stream")

    async def _deltas(
        self, messages: Sequence[ChatMessage], max_tokens: int | None, *, label: str
    ) -> AsyncGenerator[Delta, None]:
        body = self._body(messages, max_tokens)
        body["stream_options"] = {"include_usage": True}
        loop = asyncio.get_running_loop()
        end = None if self._answer is None else loop.time() + self._answer
        budgets = [b for b in (self._first_token, self._answer) if b is not None]
        first_budget = min(budgets) if budgets else None
        reader = await call(
            self._retry,
            lambda: self._open(body),
            label=label,
            secret=self._client.api_key,
            budget=first_budget,
        )
        try:
            text = reader.first
            while text is not None:
                yield Delta(text)
                try:
                    text = await reader.next_text(end, self._answer)
                except openai.OpenAIError as exc:
                    raise translate(exc, self._client.api_key) from exc
                except DeadlineExceeded as exc:
                    raise timed_out(label, exc) from exc
            yield Delta("", reader.usage)
        finally:
            await reader.close()

    async def probe(self) -> None:
        """One ``GET /models`` without retries, within the probe timeout when one is
        set; raises DependencyUnavailable if it fails."""
        await probe_server(self._client, budget=self._probe_timeout)

    def _body(self, messages: Sequence[ChatMessage], max_tokens: int | None) -> JSON:
        body: JSON = {"model": self._model, "messages": [_message(m) for m in messages]}
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    async def _open(self, body: JSON) -> _Reader:
        """Start a stream and read up to its first text: the part worth retrying."""
        reader = _Reader(await open_stream(self._client, "/chat/completions", body))
        try:
            reader.first = await reader.next_text()
        except BaseException:
            await reader.close()
            raise
        return reader


class _Reader:
    """Reads a chunk stream text by text, keeping the last usage it reported."""

    def __init__(self, upstream: EventStream) -> None:
        self._upstream = upstream
        self.first: str | None = None
        self.usage = Usage()

    async def next_text(self, end: float | None = None, budget: float | None = None) -> str | None:
        """The next non-empty text, or None when the stream ends; with ``end`` (the
        loop's clock), DeadlineExceeded once it passes while waiting for the server.
        Events already read need no deadline: a scope per token cost more than the
        rest of relaying it (bench/README.md, issue 16)."""
        while True:
            try:
                if end is None or self._upstream.ready:
                    chunk = await self._upstream.__anext__()
                else:
                    chunk = await within(end, self._upstream.__anext__, budget)
            except StopAsyncIteration:
                return None
            if not isinstance(chunk, dict):
                raise malformed("a streamed chunk is not an object")
            usage = usage_of(chunk)
            if usage is not None:
                self.usage = usage
            text = first_text(chunk, "delta")
            if text:
                return text

    async def close(self) -> None:
        await self._upstream.close()


def _message(message: ChatMessage) -> dict[str, Any]:
    role = {Role.SYSTEM: "system", Role.ASSISTANT: "assistant"}.get(message.role, "user")
    return {"role": role, "content": message.content}
