"""Deadlines of the OpenAI adapters (issue 14, item 2): a budget across retries, a
first token due long before the end of a long answer, embeddings and probes bounded,
every spent budget a DependencyUnavailable raised inside the call (so a breaker counts
it), never a cancellation."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI

from adapters.openai import OpenAIChatModel, OpenAIEmbedder, RetryPolicy, build_openai_client
from adapters.openai.retry import DeadlineExceeded
from adapters.resilience import Breaker
from entrypoints.breakers import counts_as_failure
from fakes.openai_server import FakeOpenAI
from rag_core.conversations import Role
from rag_core.errors import DependencyUnavailable
from rag_core.ports import ChatMessage

KEY = "sk-test-deadlines"
QUESTION = [ChatMessage(Role.USER, "How do nodes talk?")]
NO_WAIT = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=False)


def never() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


# -- the retry policy's budget ----------------------------------------------------------


async def test_a_budget_cancels_a_hung_try_and_is_not_retried() -> None:
    tries = 0

    async def hang() -> None:
        nonlocal tries
        tries += 1
        await never()

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"0\.2s"):
        await NO_WAIT.run(
            hang, transient=lambda e: True, retry_after=lambda e: None, label="x", budget=0.2
        )
    assert tries == 1 and time.monotonic() - started < 1


async def test_retries_happen_within_the_budget_and_stop_when_the_wait_would_outlast_it() -> None:
    outcomes: list[BaseException | str] = [ConnectionError("1"), ConnectionError("2"), "ok"]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    ok = await NO_WAIT.run(
        flaky, transient=lambda e: True, retry_after=lambda e: None, label="x", budget=5
    )
    assert ok == "ok"

    slow = RetryPolicy(attempts=3, base_delay=10, max_delay=10, jitter=False)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    started = time.monotonic()
    with pytest.raises(ConnectionError):  # the last error itself, at once
        await slow.run(
            failing, transient=lambda e: True, retry_after=lambda e: None, label="x", budget=1
        )
    assert calls == 1 and time.monotonic() - started < 0.5


async def test_only_the_budgets_own_expiry_becomes_deadline_exceeded() -> None:
    async def times_out_itself() -> None:
        raise TimeoutError("the operation's own")

    with pytest.raises(TimeoutError, match="own") as caught:
        await RetryPolicy(attempts=1).run(
            times_out_itself,
            transient=lambda e: False,
            retry_after=lambda e: None,
            label="x",
            budget=5,
        )
    assert not isinstance(caught.value, DeadlineExceeded)

    task = asyncio.create_task(
        RetryPolicy(attempts=1).run(
            never, transient=lambda e: False, retry_after=lambda e: None, label="x", budget=5
        )
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):  # an outside cancel stays a cancel
        await task
    with pytest.raises(ValueError):
        await RetryPolicy().run(
            never, transient=lambda e: False, retry_after=lambda e: None, label="x", budget=0
        )


# -- against the fake server and a black hole --------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(dimension=16) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    client = build_openai_client(KEY, fake.base_url, read_timeout=30)
    yield client
    await client.close()


@pytest.fixture
async def black_hole() -> AsyncIterator[AsyncOpenAI]:
    """A client of a server that completes TCP handshakes (the kernel's backlog) and
    never reads or answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        client = build_openai_client(KEY, f"http://127.0.0.1:{port}/v1", read_timeout=60)
        yield client
        await client.close()


def deadlined(client: AsyncOpenAI, first: float = 0.3, answer: float = 5.0) -> OpenAIChatModel:
    return OpenAIChatModel(
        client, "gpt-4o-mini", retry=NO_WAIT, first_token_timeout=first, answer_timeout=answer
    )


async def test_a_hung_model_fails_at_the_first_token_deadline_and_the_breaker_counts_it(
    black_hole: AsyncOpenAI,
) -> None:
    breaker = Breaker("openai", failure_threshold=2, recovery_timeout=30, counts=counts_as_failure)
    model = deadlined(black_hole)

    async def first_delta() -> object:
        stream = model.stream(QUESTION)
        try:
            return await anext(stream)
        finally:
            await stream.aclose()

    for call in (lambda: model.complete(QUESTION), first_delta):
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable) as caught:
            await breaker.call(call)
        assert caught.value.reason == "DeadlineExceeded"
        assert time.monotonic() - started < 1.5  # one budget, not 3 tries of 60 s
    assert breaker.snapshot().state == "open"  # each timeout counted at once


async def test_a_long_answer_may_outlast_the_first_token_deadline(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.token_delay = 0.05
    words = " ".join(f"w{n}" for n in range(20))  # about a second in all
    fake.script(words, words)
    model = deadlined(client, first=0.3, answer=10)
    completion = await model.complete(QUESTION, max_tokens=50)
    assert completion.text.split() == words.split()
    assert completion.usage.completion_tokens == 20
    streamed = "".join([d.text async for d in model.stream(QUESTION)])
    assert streamed.split() == words.split()
    sent = [body for endpoint, body in fake.bodies if endpoint == "chat"]
    assert all(body["stream"] is True for body in sent)  # read as a stream: first token seen
    assert sent[0]["max_tokens"] == 50


async def test_the_answer_deadline_bounds_a_long_answer(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.token_delay = 0.1
    fake.script(" ".join(f"w{n}" for n in range(100)), " ".join(f"w{n}" for n in range(100)))
    model = deadlined(client, first=0.3, answer=0.6)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
        await model.complete(QUESTION)
    assert time.monotonic() - started < 1.5
    received: list[str] = []
    with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
        async for delta in model.stream(QUESTION):
            received.append(delta.text)
    assert 0 < len(received) < 100
    assert fake.requests["chat"] == 2  # never retried after text came


async def test_the_answer_deadline_holds_after_tokens_that_came_in_one_burst() -> None:
    """Tokens already read are relayed without a deadline scope each; the wait for the
    next ones still has one: a server that sends a burst and then hangs fails at the
    answer deadline, not at the 60 s read timeout."""
    chunks = b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"w%d "}}]}\n\n' % n for n in range(5)
    )

    writers: list[asyncio.StreamWriter] = []

    async def burst_then_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while (await reader.readline()).strip():
            pass  # the request's head; the body is not needed
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(chunks), chunks)
        )
        await writer.drain()
        await reader.read()  # hangs until the client goes

    server = await asyncio.start_server(burst_then_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = build_openai_client(KEY, f"http://127.0.0.1:{port}/v1", read_timeout=60)
    received: list[str] = []
    started = time.monotonic()
    try:
        with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
            async for delta in deadlined(client, first=0.3, answer=0.8).stream(QUESTION):
                received.append(delta.text)
    finally:
        await client.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert "".join(received).split() == [f"w{n}" for n in range(5)]
    assert time.monotonic() - started < 2.0


async def test_a_failure_is_retried_within_the_first_token_budget(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.fail_next(503)
    assert (await deadlined(client, first=2).complete(QUESTION)).text
    assert fake.requests["chat"] == 2


async def test_without_deadlines_complete_is_one_plain_request(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    await OpenAIChatModel(client, "m", retry=NO_WAIT).complete(QUESTION)
    assert "stream" not in fake.bodies[0][1]


async def test_embeddings_have_a_budget_per_8000_characters(
    fake: FakeOpenAI, client: AsyncOpenAI, black_hole: AsyncOpenAI
) -> None:
    hung = OpenAIEmbedder(black_hole, "text-embedding-3-small", retry=NO_WAIT, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
        await hung.embed(["a question"])
    assert time.monotonic() - started < 1.5

    fake.embedding_latency = 0.4  # slower than a query's budget, within a batch's
    embedder = OpenAIEmbedder(client, "text-embedding-3-small", retry=NO_WAIT, timeout=0.25)
    vectors = await embedder.embed(["x" * 8000] * 3)  # 24,000 characters: 0.75 s
    assert len(vectors) == 3
    with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
        await embedder.embed(["a question"])


async def test_the_probe_of_a_hung_server_fails_within_its_timeout(
    black_hole: AsyncOpenAI,
) -> None:
    model = OpenAIChatModel(black_hole, "m", retry=NO_WAIT, probe_timeout=0.3)
    embedder = OpenAIEmbedder(black_hole, "e", retry=NO_WAIT, probe_timeout=0.3)
    for probe in (model.probe, embedder.probe):
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable, match="DeadlineExceeded"):
            await probe()
        assert time.monotonic() - started < 1.5


def test_deadlines_must_be_positive(client: AsyncOpenAI) -> None:
    for name in ("first_token_timeout", "answer_timeout", "probe_timeout"):
        with pytest.raises(ValueError, match=name):
            OpenAIChatModel(client, "m", retry=NO_WAIT, **{name: 0})
    with pytest.raises(ValueError, match="timeout"):
        OpenAIEmbedder(client, "e", retry=NO_WAIT, timeout=-1)
