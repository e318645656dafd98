"""The Embedder and ChatModel contracts against the in-memory models and against the
OpenAI adapters talking HTTP to the fake OpenAI server; plus what only the
in-memory models promise."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI

from adapters.memory.models import ChatRequest, HashEmbedder, ScriptedChatModel
from adapters.openai import OpenAIChatModel, OpenAIEmbedder, RetryPolicy, build_openai_client
from adapters.testing.contracts.models import (
    QUESTION,
    ChatModelContract,
    EmbedderContract,
    ModelFactory,
    Reply,
)
from fakes.openai_content import NO_PASSAGE_REPLY, content_of
from fakes.openai_server import FakeOpenAI
from rag_core.conversations import Role
from rag_core.ports import ChatMessage, Embedder
from rag_core.prompting import NumberedSource, grounded_messages

NO_RETRY = RetryPolicy(attempts=1)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(dimension=24) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    client = build_openai_client("sk-contract-key", fake.base_url, read_timeout=5)
    yield client
    await client.close()


class TestHashEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashEmbedder(dimension=24)


class TestOpenAIEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, client: AsyncOpenAI) -> Embedder:
        # Small batches so the contract's 300 inputs span many concurrent requests.
        return OpenAIEmbedder(
            client, "text-embedding-3-small", retry=NO_RETRY, batch_size=16, max_concurrency=3
        )


class TestScriptedChatModel(ChatModelContract):
    @pytest.fixture
    def make_model(self) -> ModelFactory:
        return ScriptedChatModel


class TestOpenAIChatModel(ChatModelContract):
    @pytest.fixture
    def make_model(self, fake: FakeOpenAI, client: AsyncOpenAI) -> ModelFactory:
        def make(reply: Reply) -> OpenAIChatModel:
            fake.reply = lambda messages: reply(
                [ChatMessage(Role(m["role"]), content_of(m)) for m in messages]
            )
            return OpenAIChatModel(client, "gpt-4o-mini", retry=NO_RETRY)

        return make


async def test_hash_embedder_vectors_are_unit_length_and_counted() -> None:
    embedder = HashEmbedder(dimension=8)
    vectors = await embedder.embed(["a", "b", "c"])
    await embedder.embed(["d"])
    assert all(math.isclose(math.hypot(*v), 1.0) for v in vectors)
    assert (embedder.calls, embedder.texts) == (2, 4)
    assert len({round(x, 6) for x in vectors[0]}) > 1  # not constant


async def test_hash_embedder_is_stable_across_instances() -> None:
    first = await HashEmbedder(dimension=16).embed(["kinematics"])
    assert first == await HashEmbedder(dimension=16).embed(["kinematics"])
    assert HashEmbedder(dimension=16).dimension == 16
    with pytest.raises(ValueError):
        HashEmbedder(dimension=0)


async def test_scripted_replies_in_order_then_a_clear_error() -> None:
    model = ScriptedChatModel(["first", "second reply"])
    assert (await model.complete(QUESTION)).text == "first"
    assert "".join([d.text async for d in model.stream(QUESTION, max_tokens=5)]) == "second reply"
    with pytest.raises(RuntimeError, match="no reply left"):
        await model.complete(QUESTION)
    assert model.requests[:2] == [
        ChatRequest(tuple(QUESTION), None, stream=False),
        ChatRequest(tuple(QUESTION), 5, stream=True),
    ]


async def test_scripted_usage_counts_words() -> None:
    model = ScriptedChatModel(lambda messages: "three word reply")
    completion = await model.complete([ChatMessage(Role.USER, "four words in prompt")])
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)


async def test_fake_server_default_reply_cites_passage_one(client: AsyncOpenAI) -> None:
    model = OpenAIChatModel(client, "gpt-4o-mini", retry=NO_RETRY)
    sources = [
        NumberedSource(1, "ROS 2 > Topics (/docs/topics)", "Nodes publish on topics.\nMore."),
        NumberedSource(2, "ROS 2 > Services (/docs/services)", "Services answer requests."),
    ]
    grounded = grounded_messages("How do nodes talk?", sources)
    assert (await model.complete(grounded)).text == "Nodes publish on topics. [1]"
    inline = [ChatMessage(Role.USER, "[1] Topics carry data. Really.\n[2] Other.\n\nQ?")]
    assert (await model.complete(inline)).text == "Topics carry data. [1]"
    nothing = [ChatMessage(Role.USER, "What is [1]?")]
    assert (await model.complete(nothing)).text == NO_PASSAGE_REPLY
