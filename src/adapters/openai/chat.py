"""The ChatModel port over an OpenAI-compatible ``/chat/completions`` endpoint."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from adapters.openai.client import probe_server
from adapters.openai.errors import call, translate
from adapters.openai.retry import RetryPolicy
from rag_core.conversations import Role
from rag_core.ports import ChatMessage, Completion, Delta, Usage

T = TypeVar("T")


class OpenAIChatModel:
    """Implements :class:`rag_core.ports.ChatModel` with ``client.chat.completions``.

    ``complete`` returns the first choice's text ("" if the server sent none) and
    its usage (zeros if the server does not report it). ``stream`` yields one
    Delta per non-empty content delta, then always a final ``Delta("", usage)``;
    usage is asked for with ``stream_options.include_usage``. Closing the stream
    early (``aclose()``, or cancelling the consuming task) closes the HTTP
    response, so the server sees the client go and stops generating.
    ``temperature=None`` leaves it to the server (models that refuse one).
    ``max_tokens`` is sent as ``max_tokens``, which compatible servers all read.

    Errors and timing: calls are retried per ``retry`` on connection errors,
    timeouts, 408/429/5xx (honouring Retry-After); a stream only until its first
    content delta arrives, never after text was yielded. Every wait for bytes is
    bounded by the client's read timeout. What is left raises
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
    ) -> None:
        self._client = client
        self._model = model
        self._retry = retry
        self._temperature = temperature

    @property
    def model(self) -> str:
        return self._model

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        response = await call(
            self._retry,
            lambda: self._client.chat.completions.create(
                model=self._model,
                messages=[_message(m) for m in messages],
                temperature=_given(self._temperature),
                max_tokens=_given(max_tokens),
            ),
            label="openai chat completion",
            secret=self._client.api_key,
        )
        text = (response.choices[0].message.content or "") if response.choices else ""
        return Completion(text=text, usage=_usage(response.usage))

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        payload = [_message(m) for m in messages]
        reader = await call(
            self._retry,
            lambda: self._open(payload, max_tokens),
            label="openai chat stream",
            secret=self._client.api_key,
        )
        try:
            text = reader.first
            while text is not None:
                yield Delta(text)
                try:
                    text = await reader.next_text()
                except openai.OpenAIError as exc:
                    raise translate(exc, self._client.api_key) from exc
            yield Delta("", reader.usage)
        finally:
            await reader.close()

    async def probe(self) -> None:
        """One ``GET /models`` without retries; raises DependencyUnavailable if it fails."""
        await probe_server(self._client)

    async def _open(
        self, payload: list[ChatCompletionMessageParam], max_tokens: int | None
    ) -> _Reader:
        """Start a stream and read up to its first text: the part worth retrying."""
        upstream = await self._client.chat.completions.create(
            model=self._model,
            messages=payload,
            temperature=_given(self._temperature),
            max_tokens=_given(max_tokens),
            stream=True,
            stream_options={"include_usage": True},
        )
        reader = _Reader(upstream)
        try:
            reader.first = await reader.next_text()
        except BaseException:
            await reader.close()
            raise
        return reader


class _Reader:
    """Reads a chunk stream text by text, keeping the last usage it reported."""

    def __init__(self, upstream: openai.AsyncStream[ChatCompletionChunk]) -> None:
        self._upstream = upstream
        self.first: str | None = None
        self.usage = Usage()

    async def next_text(self) -> str | None:
        """The next non-empty text, or None when the stream ends."""
        while True:
            try:
                chunk = await self._upstream.__anext__()
            except StopAsyncIteration:
                return None
            if chunk.usage is not None:
                self.usage = _usage(chunk.usage)
            text = "".join(c.delta.content or "" for c in chunk.choices if c.index == 0)
            if text:
                return text

    async def close(self) -> None:
        await self._upstream.close()


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role is Role.SYSTEM:
        return {"role": "system", "content": message.content}
    if message.role is Role.ASSISTANT:
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _given(value: T | None) -> T | openai.Omit:
    return openai.omit if value is None else value


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )
