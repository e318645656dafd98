"""The Server-Sent Events reader of the OpenAI chat adapter (``adapters.openai.wire``):
lines split anywhere, CR / LF / CRLF, comments, ``[DONE]``, error events, usage in the
last chunk, transport errors mid-stream; scripted bodies over httpx2's MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import openai
import pytest

from adapters.openai import OpenAIChatModel, RetryPolicy
from adapters.openai.wire import DataDecoder, open_stream, post_json
from rag_core.conversations import Role
from rag_core.errors import DependencyUnavailable
from rag_core.ports import ChatMessage, Usage

QUESTION = [ChatMessage(Role.USER, "How do nodes talk?")]
NO_WAIT = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01, jitter=False)


def decoded(*chunks: bytes) -> list[str]:
    decoder = DataDecoder()
    return [data for chunk in chunks for data in decoder.feed(chunk)]


def one_byte_at_a_time(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


# -- the line decoder ------------------------------------------------------------------


def test_events_are_the_same_however_the_body_is_split() -> None:
    body = 'data: {"a": 1}\n\ndata: {"b": "é ü"}\n\n: keep-alive\n\ndata: [DONE]\n\n'.encode()
    expected = ['{"a": 1}', '{"b": "é ü"}', "[DONE]"]
    assert decoded(body) == expected
    assert decoded(*one_byte_at_a_time(body)) == expected  # UTF-8 split mid-character too
    for cut in range(len(body)):
        assert decoded(body[:cut], body[cut:]) == expected


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_lines_end_with_cr_lf_or_crlf(end: bytes) -> None:
    body = b"data: one" + end + end + b"data: two" + end + end
    assert decoded(body) == ["one", "two"]
    assert decoded(*one_byte_at_a_time(body)) == ["one", "two"]  # CR | LF across chunks


def test_fields_comments_and_data_lines() -> None:
    body = (
        b": a comment\n"
        b"event: message\nid: 7\nretry: 100\ndata: first\ndata:second\ndata:  spaced\n\n"
        b"event: ping\n\n"  # no data: nothing dispatched
        b"data\n\n"  # a field with no colon: empty data
        b"datum: not data\ndata: kept\n\n"
        b"data: cut short"  # the stream ends before the blank line: dropped
    )
    assert decoded(body) == ["first\nsecond\n spaced", "", "kept"]


def test_data_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(DependencyUnavailable, match="malformed answer"):
        decoded(b"data: \xff\xfe\n\n")


# -- the stream over a scripted response ---------------------------------------------------


def chunk(content: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}


def sse(*items: object) -> bytes:
    return b"".join(
        b"data: " + (item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n\n"
        for item in items
    )


class Body(httpx2.AsyncByteStream):
    """A response body sent in the given parts, then ``error`` raised if given."""

    def __init__(self, parts: list[bytes], error: Exception | None = None) -> None:
        self.parts, self.error, self.closed = parts, error, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


class Scripted:
    """An AsyncOpenAI client whose every POST is answered with ``body()``."""

    def __init__(self, body: Callable[[], Body]) -> None:
        self.body, self.requests, self.bodies = body, 0, list[Body]()

        def answer(request: httpx2.Request) -> httpx2.Response:
            self.requests += 1
            self.bodies.append(self.body())
            headers = {"content-type": "text/event-stream"}
            return httpx2.Response(200, headers=headers, stream=self.bodies[-1])

        self.client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://model.test/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
        )

    def model(self, **deadlines: float) -> OpenAIChatModel:
        return OpenAIChatModel(self.client, "m", retry=NO_WAIT, **deadlines)


async def test_done_ends_the_stream_and_the_last_chunks_usage_is_kept() -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    body = sse(
        chunk("", usage=None),
        chunk("Hello ", usage=None),
        chunk("world", usage=None),
        {"object": "chat.completion.chunk", "choices": [], "usage": usage},
        b"[DONE]",
        chunk("after done"),
    )
    scripted = Scripted(lambda: Body([*one_byte_at_a_time(body[:40]), body[40:]]))
    deltas = [d async for d in scripted.model().stream(QUESTION)]
    assert [d.text for d in deltas] == ["Hello ", "world", ""]
    assert deltas[-1].usage == Usage(11, 2)
    completion = await scripted.model(first_token_timeout=5).complete(QUESTION)
    assert (completion.text, completion.usage) == ("Hello world", Usage(11, 2))
    assert all(b.closed for b in scripted.bodies)


async def test_a_body_ending_without_done_ends_the_stream() -> None:
    scripted = Scripted(lambda: Body([sse(chunk("all"))]))
    deltas = [d async for d in scripted.model().stream(QUESTION)]
    assert [(d.text, d.usage) for d in deltas] == [("all", None), ("", Usage())]


async def test_an_error_event_is_unavailable_and_not_retried() -> None:
    error = {"error": {"message": "the model is overloaded", "type": "server_error"}}
    scripted = Scripted(lambda: Body([sse(chunk(""), error)]))
    with pytest.raises(DependencyUnavailable) as caught:
        await scripted.model(first_token_timeout=5).complete(QUESTION)
    assert (caught.value.dependency, caught.value.reason) == ("openai", "APIError")
    assert scripted.requests == 1


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"null"])
async def test_events_that_are_not_json_objects_are_malformed(data: bytes) -> None:
    scripted = Scripted(lambda: Body([sse(chunk("a"), data)]))
    stream = scripted.model().stream(QUESTION)
    assert (await anext(stream)).text == "a"
    with pytest.raises(DependencyUnavailable, match="malformed answer"):
        await anext(stream)
    await stream.aclose()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx2.ReadError("connection reset"), "APIConnectionError"),
        (httpx2.RemoteProtocolError("incomplete chunked read"), "APIConnectionError"),
        (httpx2.ReadTimeout("read timed out"), "APITimeoutError"),
    ],
)
async def test_transport_errors_mid_stream_keep_the_sdks_reasons(
    error: Exception, reason: str
) -> None:
    scripted = Scripted(lambda: Body([sse(chunk("a"), chunk("b"))], error))
    received: list[str] = []
    with pytest.raises(DependencyUnavailable) as caught:
        async for delta in scripted.model().stream(QUESTION):
            received.append(delta.text)
    assert received == ["a", "b"] and caught.value.reason == reason
    assert scripted.requests == 1  # never retried after text came
    assert scripted.bodies[0].closed


async def test_a_transport_error_before_the_first_token_is_retried() -> None:
    bodies = iter([Body([], httpx2.ReadError("reset")), Body([sse(chunk("ok"), b"[DONE]")])])
    scripted = Scripted(lambda: next(bodies))
    assert (await scripted.model(first_token_timeout=5).complete(QUESTION)).text == "ok"
    assert scripted.requests == 2


async def test_hot_calls_send_what_the_sdk_sends() -> None:
    """post_json and open_stream post through the client's own HTTP client with the
    SDK's headers, body and timeouts; its status errors come out of them unchanged."""
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if len(seen) == 4:
            return httpx2.Response(429, headers={"retry-after": "2"}, json={"error": {}})
        return httpx2.Response(200, json={"ok": 1})

    client = openai.AsyncOpenAI(
        api_key="sk-test-4f9a8b7c",
        base_url="http://model.test/v1",
        max_retries=0,
        timeout=openai.Timeout(60, connect=5),
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
    )
    security: openai.RequestOptions = {"security": {"bearer_auth": True}}
    await client.post("/chat/completions", cast_to=dict, body={"a": 1}, options=security)
    assert await post_json(client, "/chat/completions", {"a": 1}) == {"ok": 1}
    sdk, ours = seen
    assert (str(ours.url), ours.method, ours.content) == (str(sdk.url), sdk.method, sdk.content)
    assert dict(ours.headers) == dict(sdk.headers)
    assert ours.extensions["timeout"] == sdk.extensions["timeout"]
    stream = await open_stream(client, "/chat/completions", {"a": 1})
    await stream.close()
    assert json.loads(seen[2].content) == {"a": 1, "stream": True}
    with pytest.raises(openai.RateLimitError) as caught:
        await post_json(client, "/embeddings", {"input": "x"})
    assert caught.value.response.headers["retry-after"] == "2"
