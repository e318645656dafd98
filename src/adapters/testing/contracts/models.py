"""The Embedder and ChatModel contracts: every adapter runs these same suites
(this project's: tests/contract/test_models.py), so the in-memory models are trustworthy stand-ins.

An ``EmbedderContract`` subclass provides an ``embedder`` fixture: a fresh embedder
whose ``dimension`` is known after its first ``embed`` at the latest. A
``ChatModelContract`` subclass provides ``make_model``: a factory taking a reply
function (messages -> reply text) and returning a model that answers with it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable, Sequence

import pytest

from rag_core.conversations import Role
from rag_core.ports import ChatMessage, ChatModel, Delta, Embedder

Reply = Callable[[Sequence[ChatMessage]], str]
ModelFactory = Callable[[Reply], ChatModel]

AWKWARD_TEXTS = ["", "   ", "ünïcødé — «quotes» 🤖", "line one\nline two\ttab", "x" * 16_000]
QUESTION = [
    ChatMessage(Role.SYSTEM, "Answer from the passages and cite them."),
    ChatMessage(Role.USER, "[1] Nodes publish messages on topics.\n\nHow do nodes talk?"),
]


class EmbedderContract:
    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError("a contract subclass provides the embedder fixture")

    async def test_one_vector_per_text_in_order(self, embedder: Embedder) -> None:
        texts = [f"passage number {n} about robots" for n in range(10)]
        vectors = await embedder.embed(texts)
        singles = [(await embedder.embed([text]))[0] for text in texts]
        assert vectors == singles
        assert await embedder.embed(texts[::-1]) == vectors[::-1]

    async def test_many_inputs_are_batched_transparently(self, embedder: Embedder) -> None:
        texts = [f"chunk {n}" for n in range(300)]
        vectors = await embedder.embed(texts)
        assert len(vectors) == 300
        for n in (0, 127, 128, 299):
            assert vectors[n] == (await embedder.embed([texts[n]]))[0]

    async def test_identical_texts_identical_vectors_different_texts_differ(
        self, embedder: Embedder
    ) -> None:
        a1, b, a2 = await embedder.embed(["same text", "other text", "same text"])
        assert a1 == a2
        assert a1 != b

    async def test_dimension_is_every_vector_length(self, embedder: Embedder) -> None:
        vectors = await embedder.embed(["one", "two", "three"])
        assert embedder.dimension > 0
        assert {len(v) for v in vectors} == {embedder.dimension}
        assert isinstance(embedder.model, str) and embedder.model

    async def test_vectors_are_finite_tuples_of_floats(self, embedder: Embedder) -> None:
        (vector,) = await embedder.embed(["kinematics"])
        assert isinstance(vector, tuple)
        assert all(isinstance(x, float) and math.isfinite(x) for x in vector)
        assert any(x != 0.0 for x in vector)

    async def test_no_texts_no_vectors(self, embedder: Embedder) -> None:
        assert await embedder.embed([]) == []

    async def test_awkward_texts_embed(self, embedder: Embedder) -> None:
        vectors = await embedder.embed(AWKWARD_TEXTS)
        assert len(vectors) == len(AWKWARD_TEXTS)
        assert {len(v) for v in vectors} == {embedder.dimension}
        assert (await embedder.embed(AWKWARD_TEXTS[-1:]))[0] == vectors[-1]

    async def test_concurrent_calls_keep_their_own_order(self, embedder: Embedder) -> None:
        groups = [[f"group {g} text {n}" for n in range(20)] for g in range(4)]
        together = await asyncio.gather(*(embedder.embed(group) for group in groups))
        assert list(together) == [await embedder.embed(group) for group in groups]


def echo_roles(messages: Sequence[ChatMessage]) -> str:
    return " | ".join(f"{m.role.value}: {m.content}" for m in messages)


async def collect(stream: AsyncGenerator[Delta, None]) -> list[Delta]:
    return [delta async for delta in stream]


def as_generator(stream: object) -> AsyncGenerator[Delta, None]:
    assert isinstance(stream, AsyncGenerator), "stream() should be an async generator"
    return stream


class ChatModelContract:
    @pytest.fixture
    def make_model(self) -> ModelFactory:
        raise NotImplementedError("a contract subclass provides the make_model fixture")

    async def test_complete_returns_text_and_usage(self, make_model: ModelFactory) -> None:
        model = make_model(lambda messages: "Nodes publish messages on topics [1].")
        completion = await model.complete(QUESTION)
        assert completion.text == "Nodes publish messages on topics [1]."
        assert completion.usage.prompt_tokens > 0
        assert completion.usage.completion_tokens > 0

    async def test_messages_arrive_in_order_with_their_roles(
        self, make_model: ModelFactory
    ) -> None:
        model = make_model(echo_roles)
        messages = [
            *QUESTION,
            ChatMessage(Role.ASSISTANT, "Topics."),
            ChatMessage(Role.USER, "More?"),
        ]
        assert (await model.complete(messages)).text == echo_roles(messages)

    @pytest.mark.parametrize(
        "reply",
        [
            "Nodes publish messages on topics [1].",
            "  leading, double  spaces and trailing  ",
            "ünïcødé — «quotes» 🤖\nand a second line [2]",
            "",
        ],
    )
    async def test_stream_concatenates_to_complete(
        self, make_model: ModelFactory, reply: str
    ) -> None:
        model = make_model(lambda messages: reply)
        completion = await model.complete(QUESTION)
        deltas = await collect(as_generator(model.stream(QUESTION)))
        assert "".join(d.text for d in deltas) == completion.text == reply
        *texts, last = deltas
        assert last == Delta("", completion.usage)
        assert all(d.text and d.usage is None for d in texts)

    async def test_stream_arrives_in_several_deltas(self, make_model: ModelFactory) -> None:
        model = make_model(lambda messages: "one two three four five")
        deltas = await collect(as_generator(model.stream(QUESTION)))
        assert len([d for d in deltas if d.text]) > 1

    async def test_max_tokens_bounds_the_reply(self, make_model: ModelFactory) -> None:
        reply = "one two three four five six seven eight nine ten"
        model = make_model(lambda messages: reply)
        short = await model.complete(QUESTION, max_tokens=3)
        assert reply.startswith(short.text) and len(short.text) < len(reply)
        assert 0 < short.usage.completion_tokens <= 3
        streamed = await collect(as_generator(model.stream(QUESTION, max_tokens=3)))
        assert "".join(d.text for d in streamed) == short.text

    async def test_early_aclose_is_clean(self, make_model: ModelFactory) -> None:
        reply = " ".join(f"word{n}" for n in range(200))
        model = make_model(lambda messages: reply)
        stream = as_generator(model.stream(QUESTION))
        first = await anext(stream)
        assert first.text
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert (await model.complete(QUESTION)).text == reply

    async def test_concurrent_streams_do_not_mix(self, make_model: ModelFactory) -> None:
        model = make_model(lambda messages: f"reply to {messages[-1].content} " * 5)
        questions = [[ChatMessage(Role.USER, f"q{n}")] for n in range(4)]
        results = await asyncio.gather(*(collect(as_generator(model.stream(q))) for q in questions))
        for n, deltas in enumerate(results):
            assert "".join(d.text for d in deltas) == f"reply to q{n} " * 5
