"""The OpenAI adapters against the fake OpenAI server: retries, Retry-After, error
translation, timeouts, batching, concurrency, stream cancellation, no key leaks."""

from __future__ import annotations

import array
import asyncio
import base64
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from openai import AsyncOpenAI

from adapters.openai import (
    DimensionUnknown,
    OpenAIChatModel,
    OpenAIEmbedder,
    RetryPolicy,
    build_openai_client,
)
from adapters.openai.retry import parse_retry_after
from adapters.openai.wire import first_text, usage_of, vector_of
from fakes.openai_content import fake_vector
from fakes.openai_server import FakeOpenAI
from rag_core.conversations import Role
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.ports import ChatMessage, Usage

KEY = "sk-test-SECRET-4f9a8b7c6d5e"
EMBEDDING_MODEL = "text-embedding-3-small"
QUESTION = [
    ChatMessage(
        Role.SYSTEM, "Sources:\n\n[1] ROS 2 > Topics (/docs/topics)\nTopics carry messages."
    ),
    ChatMessage(Role.USER, "How do nodes talk?"),
]


class RecordedSleep:
    """The policy's sleep: records each wait, then really waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(dimension=16) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    client = build_openai_client(KEY, fake.base_url, read_timeout=5)
    yield client
    await client.close()


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def policy(sleep: RecordedSleep) -> RetryPolicy:
    return RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.5, jitter=False, sleep=sleep)


@pytest.fixture
def chat(client: AsyncOpenAI, policy: RetryPolicy) -> OpenAIChatModel:
    return OpenAIChatModel(client, "gpt-4o-mini", retry=policy)


@pytest.fixture
def embedder(client: AsyncOpenAI, policy: RetryPolicy) -> OpenAIEmbedder:
    return OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy)


def as_sent(text: str) -> tuple[float, ...]:
    """The fake's vector for ``text`` at the float32 precision of the base64 wire."""
    return tuple(array.array("f", fake_vector(EMBEDDING_MODEL, text, 16)))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the retry policy ----------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half() -> None:
    plain = RetryPolicy(base_delay=0.5, max_delay=8, jitter=False)
    assert [plain.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 8]
    assert RetryPolicy(base_delay=1, jitter=True, random=lambda: 0.0).delay(3) == 2
    assert RetryPolicy(base_delay=1, jitter=True, random=lambda: 1.0).delay(3) == 4
    assert plain.delay(1, retry_after=3) == 3
    assert plain.delay(1, retry_after=60) == 8
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now) == 10
    assert parse_retry_after(format_datetime(now - timedelta(seconds=10), usegmt=True), now) == 0
    for unreadable in (None, "", "soon", "inf", "nan"):
        assert parse_retry_after(unreadable) is None


# -- retries -------------------------------------------------------------------------


async def test_500_is_retried_then_succeeds(
    fake: FakeOpenAI, chat: OpenAIChatModel, sleep: RecordedSleep, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(500, times=2)
    assert (await chat.complete(QUESTION)).text == "Topics carry messages. [1]"
    assert fake.requests["chat"] == 3
    assert sleep.waits == [0.01, 0.02]
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING] * 2


async def test_429_retry_after_is_honoured(
    fake: FakeOpenAI, embedder: OpenAIEmbedder, sleep: RecordedSleep
) -> None:
    fake.fail_next(429, retry_after="0.2")
    started = time.monotonic()
    assert len(await embedder.embed(["a", "b"])) == 2
    assert sleep.waits == [0.2]
    assert 0.2 <= time.monotonic() - started < 2
    assert fake.requests["embeddings"] == 2


async def test_retry_after_ms_wins_and_the_hint_is_capped(
    fake: FakeOpenAI, client: AsyncOpenAI, sleep: RecordedSleep
) -> None:
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1, sleep=sleep)
    fake.fail_next(503, retry_after="1", headers={"retry-after-ms": "30"})
    fake.fail_next(429, retry_after="3600")
    await OpenAIChatModel(client, "gpt-4o-mini", retry=policy).complete(QUESTION)
    assert sleep.waits == [0.03, 0.1]


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_a_refused_request_is_invalid_input_and_not_retried(
    fake: FakeOpenAI, chat: OpenAIChatModel, sleep: RecordedSleep, status: int
) -> None:
    fake.fail_next(status, message="This model's maximum context length is 8192 tokens")
    with pytest.raises(InvalidInput, match="maximum context length") as caught:
        await chat.complete(QUESTION)
    assert f"HTTP {status}" in str(caught.value)
    assert fake.requests["chat"] == 1
    assert sleep.waits == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "AuthenticationError"), (403, "PermissionDeniedError"), (404, "NotFoundError")],
)
async def test_misconfiguration_is_unavailable_and_not_retried(
    fake: FakeOpenAI, embedder: OpenAIEmbedder, status: int, reason: str
) -> None:
    fake.fail_next(status)
    with pytest.raises(DependencyUnavailable) as caught:
        await embedder.embed(["a"])
    assert (caught.value.dependency, caught.value.reason) == ("openai", reason)
    assert fake.requests["embeddings"] == 1


async def test_exhausted_retries_are_unavailable_with_the_servers_hint(
    fake: FakeOpenAI, chat: OpenAIChatModel
) -> None:
    fake.fail_next(429, times=3, retry_after="0.05")
    with pytest.raises(DependencyUnavailable) as caught:
        await chat.complete(QUESTION)
    assert (caught.value.reason, caught.value.retry_after) == ("RateLimitError", 0.05)
    assert fake.requests["chat"] == 3

    fake.fail_next(500, times=3)
    with pytest.raises(DependencyUnavailable) as caught:
        await chat.complete(QUESTION)
    assert (caught.value.reason, caught.value.retry_after) == ("InternalServerError", None)


async def test_an_exhausted_quota_is_not_retried(fake: FakeOpenAI, chat: OpenAIChatModel) -> None:
    fake.fail_next(429, code="insufficient_quota", message="You exceeded your current quota")
    with pytest.raises(DependencyUnavailable, match="RateLimitError"):
        await chat.complete(QUESTION)
    assert fake.requests["chat"] == 1


async def test_connection_refused_is_unavailable_quickly(policy: RetryPolicy) -> None:
    client = build_openai_client(KEY, f"http://127.0.0.1:{closed_port()}/v1", connect_timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(DependencyUnavailable) as caught:
            await OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy).embed(["a"])
    finally:
        await client.close()
    assert caught.value.reason == "APIConnectionError"  # not a timeout, whatever the transport says
    assert time.monotonic() - started < 2


async def test_read_timeout_is_unavailable(fake: FakeOpenAI, policy: RetryPolicy) -> None:
    fake.first_byte_latency = 3
    client = build_openai_client(KEY, fake.base_url, read_timeout=0.1)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as caught:
        await OpenAIChatModel(client, "gpt-4o-mini", retry=policy).complete(QUESTION)
    assert caught.value.reason == "APITimeoutError"
    assert fake.requests["chat"] == 3  # timeouts are retried
    assert time.monotonic() - started < 2
    await client.close()


# -- embeddings ----------------------------------------------------------------------


async def test_300_inputs_in_batches_of_128_are_3_requests_in_order(
    fake: FakeOpenAI, embedder: OpenAIEmbedder
) -> None:
    texts = [f"chunk {n}" for n in range(300)]
    vectors = await embedder.embed(texts)
    assert fake.requests["embeddings"] == 3
    assert sorted(len(body["input"]) for _, body in fake.bodies) == [44, 128, 128]
    assert vectors == [as_sent(t) for t in texts]
    assert {body["encoding_format"] for _, body in fake.bodies} == {"base64"}


async def test_batches_are_also_bounded_in_characters(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, max_batch_chars=2500)
    texts = [f"{n}" * 1000 for n in range(10)]
    vectors = await embedder.embed(texts)
    assert sorted(len(body["input"]) for _, body in fake.bodies) == [2] * 5
    assert vectors == [as_sent(t) for t in texts]


async def test_at_most_max_concurrency_requests_in_flight(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    fake.embedding_latency = 0.05
    embedder = OpenAIEmbedder(
        client, EMBEDDING_MODEL, retry=policy, batch_size=10, max_concurrency=3
    )
    await embedder.embed([f"t{n}" for n in range(100)])
    assert fake.requests["embeddings"] == 10
    assert fake.max_concurrent["embeddings"] == 3


async def test_long_texts_are_truncated_and_empty_ones_sent_as_a_space(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, max_chars=1000)
    vectors = await embedder.embed(["x" * 20_000, ""])
    assert len(vectors) == 2
    (_, body), *_ = fake.bodies
    assert body["input"] == ["x" * 1000, " "]


async def test_a_failing_batch_fails_the_call(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    fake.embedding_latency = 0.05
    fake.fail_next(400, message="bad input")
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, batch_size=2)
    with pytest.raises(InvalidInput, match="bad input"):
        await embedder.embed([f"t{n}" for n in range(8)])


async def test_dimension_is_discovered_once_or_configured(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy)
    with pytest.raises(DimensionUnknown, match="discover_dimension"):
        _ = embedder.dimension
    assert await embedder.discover_dimension() == 16
    assert await embedder.discover_dimension() == 16
    assert fake.requests["embeddings"] == 1

    configured = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, dimension=16)
    assert configured.dimension == 16
    assert fake.requests["embeddings"] == 1


async def test_every_call_sends_the_key(policy: RetryPolicy) -> None:
    with FakeOpenAI(dimension=16, api_key=KEY) as server:
        client = build_openai_client(KEY, server.base_url, read_timeout=5)
        assert await OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy).embed(["a"])
        chat = OpenAIChatModel(client, "m", retry=policy)
        assert (await chat.complete(QUESTION)).text == "Topics carry messages. [1]"
        assert "".join([d.text async for d in chat.stream(QUESTION)]) == (
            "Topics carry messages. [1]"
        )
        await client.close()
        wrong = build_openai_client("sk-wrong-key-0000", server.base_url, read_timeout=5)
        with pytest.raises(DependencyUnavailable, match="AuthenticationError"):
            await OpenAIEmbedder(wrong, EMBEDDING_MODEL, retry=policy).embed(["a"])
        await wrong.close()


def test_vectors_are_read_from_base64_float32_or_lists_of_numbers() -> None:
    values = [0.5, -0.25, 1e-3]
    packed = base64.b64encode(array.array("f", values).tobytes()).decode()
    assert vector_of({"index": 0, "embedding": packed}) == tuple(array.array("f", values))
    assert vector_of({"index": 0, "embedding": [0.5, -1, 2.0]}) == (0.5, -1.0, 2.0)
    for item in (
        {"embedding": "not base64!"},
        {"embedding": base64.b64encode(b"12345").decode()},  # not a whole float32
        {"embedding": ["0.5"]},
        {"embedding": None},
        {},
        "a string",
    ):
        with pytest.raises(DependencyUnavailable, match="malformed answer"):
            vector_of(item)


def test_answers_of_unexpected_shapes_are_unavailable_not_crashes() -> None:
    assert first_text({"choices": [{"index": 0, "message": {"content": "hi"}}]}, "message") == "hi"
    assert first_text({"choices": []}, "message") == ""
    assert first_text({}, "delta") == ""
    assert first_text({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, "delta") == ""
    for answer in ({"choices": "x"}, {"choices": [{"index": 0, "message": {"content": 3}}]}):
        with pytest.raises(DependencyUnavailable, match="malformed answer"):
            first_text(answer, "message")
    assert usage_of({"usage": {"prompt_tokens": 3, "completion_tokens": 2}}) == Usage(3, 2)
    assert usage_of({"usage": {"prompt_tokens": "3"}}) == Usage(0, 0)
    assert usage_of({"usage": None}) is None


async def test_a_shortened_dimension_is_requested(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, dimension=8, shorten=True)
    vectors = await embedder.embed(["a", "b"])
    assert [len(v) for v in vectors] == [8, 8]
    ((_, body),) = fake.bodies
    assert body["dimensions"] == 8
    await OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, dimension=16).embed(["a"])
    assert "dimensions" not in fake.bodies[-1][1]
    with pytest.raises(ValueError, match="shorten needs a dimension"):
        OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, shorten=True)


async def test_vectors_of_another_dimension_than_configured_are_refused(
    client: AsyncOpenAI, policy: RetryPolicy
) -> None:
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy, dimension=1536)
    with pytest.raises(DependencyUnavailable, match="16-dimensional vectors, 1536 expected"):
        await embedder.embed(["a"])


# -- chat ----------------------------------------------------------------------------


async def test_request_parameters(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    await OpenAIChatModel(client, "m", retry=RetryPolicy()).complete(QUESTION, max_tokens=5)
    await OpenAIChatModel(client, "m", retry=RetryPolicy(), temperature=None).complete(QUESTION)
    _ = [d async for d in OpenAIChatModel(client, "m", retry=RetryPolicy()).stream(QUESTION)]
    first, second, streamed = (body for _, body in fake.bodies)
    assert (first["temperature"], first["max_tokens"]) == (0.2, 5)
    assert "temperature" not in second and "max_tokens" not in second
    assert first["messages"] == [
        {"role": "system", "content": QUESTION[0].content},
        {"role": "user", "content": QUESTION[1].content},
    ]
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


async def test_a_stream_is_retried_before_its_first_delta(
    fake: FakeOpenAI, chat: OpenAIChatModel
) -> None:
    fake.fail_next(503)
    fake.drop_next_stream(after_tokens=0)
    text = "".join([d.text async for d in chat.stream(QUESTION)])
    assert text == "Topics carry messages. [1]"
    assert fake.requests["chat"] == 3


async def test_a_stream_is_not_retried_after_its_first_delta(
    fake: FakeOpenAI, chat: OpenAIChatModel
) -> None:
    fake.drop_next_stream(after_tokens=2)
    received: list[str] = []
    with pytest.raises(DependencyUnavailable) as caught:
        async for delta in chat.stream(QUESTION):
            received.append(delta.text)
    assert received == ["Topics ", "carry "]
    assert caught.value.reason == "APIConnectionError"
    assert fake.requests["chat"] == 1


async def test_a_stream_whose_first_token_never_comes_times_out(
    fake: FakeOpenAI, policy: RetryPolicy
) -> None:
    fake.token_delay = 3
    client = build_openai_client(KEY, fake.base_url, read_timeout=0.1)
    with pytest.raises(DependencyUnavailable, match="APITimeoutError"):
        _ = [d async for d in OpenAIChatModel(client, "m", retry=policy).stream(QUESTION)]
    assert fake.requests["chat"] == 3
    await client.close()


async def test_closing_a_stream_early_disconnects_from_the_server(
    fake: FakeOpenAI, chat: OpenAIChatModel
) -> None:
    fake.token_delay = 0.01
    fake.script(" ".join(f"w{n}" for n in range(300)))
    stream = chat.stream(QUESTION)
    assert [(await anext(stream)).text for _ in range(2)] == ["w0 ", "w1 "]
    await stream.aclose()
    assert await asyncio.to_thread(fake.wait_until, lambda: fake.streams[0].disconnected)
    assert not fake.streams[0].completed
    assert fake.streams[0].sent < 20


async def test_cancelling_the_consumer_disconnects_from_the_server(
    fake: FakeOpenAI, chat: OpenAIChatModel
) -> None:
    fake.token_delay = 0.01
    fake.script(" ".join(f"w{n}" for n in range(300)))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in chat.stream(QUESTION):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.wait_until, lambda: fake.streams[0].disconnected)


async def test_probe(fake: FakeOpenAI, chat: OpenAIChatModel, embedder: OpenAIEmbedder) -> None:
    await chat.probe()
    await embedder.probe()
    fake.fail_next(500)
    with pytest.raises(DependencyUnavailable, match="InternalServerError"):
        await chat.probe()
    assert fake.requests["models"] == 3  # the probe is not retried


# -- the client and secrets ------------------------------------------------------------


async def test_the_client_owns_no_retries_and_has_explicit_timeouts() -> None:
    client = build_openai_client(KEY, "http://127.0.0.1:1/v1", connect_timeout=2, read_timeout=9)
    assert client.max_retries == 0
    assert (client.timeout.connect, client.timeout.read) == (2, 9)  # type: ignore[union-attr]
    assert str(client.base_url).startswith("http://127.0.0.1:1/v1")
    await client.close()
    for url in ("ftp://example.com", "localhost:8000"):
        with pytest.raises(ValueError, match="http"):
            build_openai_client(KEY, url)
    default = build_openai_client(KEY, None)
    assert str(default.base_url).startswith("https://api.openai.com/v1")
    await default.close()


async def test_the_key_never_appears_in_errors_or_logs(
    fake: FakeOpenAI, client: AsyncOpenAI, policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = OpenAIChatModel(client, "gpt-4o-mini", retry=policy)
    embedder = OpenAIEmbedder(client, EMBEDDING_MODEL, retry=policy)
    errors: list[Exception] = []
    fake.fail_next(400, message="Invalid request with key {api_key} (sk-abc***wxyz)")
    fake.fail_next(500, times=3)
    fake.fail_next(429, times=3, retry_after="0")
    for _ in range(3):
        with pytest.raises((InvalidInput, DependencyUnavailable)) as caught:
            await chat.complete(QUESTION)
        errors.append(caught.value)
    fake.api_key = "sk-another-key"
    with pytest.raises(DependencyUnavailable) as caught:
        await embedder.embed(["a"])
    errors.append(caught.value)
    refused = build_openai_client(KEY, f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(DependencyUnavailable) as caught:
        _ = [d async for d in OpenAIChatModel(refused, "m", retry=policy).stream(QUESTION)]
    errors.append(caught.value)
    await refused.close()

    assert str(errors[0]).endswith("Invalid request with key *** (sk-***)")
    for error in errors:
        assert KEY not in str(error) and "127.0.0.1" not in str(error)
    for error in errors[1:]:  # the whole chain, where the server did not echo the key
        assert KEY not in "".join(traceback.format_exception(error))
    assert caplog.records
    assert not [r for r in caplog.records if KEY in r.getMessage()]
