"""Answering with and without a chat model, streamed and not (in-memory adapters)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from adapters.memory.conversations import InMemoryConversationStore
from adapters.memory.index import InMemoryIndex
from adapters.system import SystemClock, UuidGenerator
from rag_core.answering import Answerer
from rag_core.answers import AnswerMode, Usage
from rag_core.chat import ChatService
from rag_core.chunking import Chunker
from rag_core.conversations import Message, Role
from rag_core.errors import DependencyUnavailable
from rag_core.events import AnswerComplete, SourcesFound, TextDelta
from rag_core.ingestion import Ingestor
from rag_core.lexical import LexicalEncoder
from rag_core.markdown import parse_document
from rag_core.ports import ChatMessage, Completion, Delta, SearchQuery
from rag_core.retrieval import Retriever

DOCS = {
    "docs/topics.md": "# Topics\n\nA topic is a named bus over which nodes exchange messages.\n",
    "docs/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
}


class Model:
    """A scripted chat model: replies come from ``reply(messages)``; records calls."""

    def __init__(self, reply: Callable[[Sequence[ChatMessage]], str], fail: bool = False) -> None:
        self.reply = reply
        self.fail = fail
        self.calls: list[Sequence[ChatMessage]] = []
        self.closed = 0

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        self.calls.append(messages)
        if self.fail:
            raise DependencyUnavailable("openai", "APIConnectionError")
        return Completion(self.reply(messages), Usage(10, 5))

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> AsyncGenerator[Delta, None]:
        self.calls.append(messages)
        if self.fail:
            raise DependencyUnavailable("openai", "APIConnectionError")
        try:
            for word in self.reply(messages).split(" "):
                yield Delta(word + " ")
            yield Delta("", Usage(10, 5))
        finally:
            self.closed += 1


class DownIndex(InMemoryIndex):
    async def search(self, query: SearchQuery) -> list:  # type: ignore[type-arg]
        raise DependencyUnavailable("qdrant", "ConnectError")


async def answerer(model: Model | None, index: InMemoryIndex | None = None) -> Answerer:
    index = index or InMemoryIndex()
    encoder = LexicalEncoder()
    await Ingestor(index, encoder, Chunker()).ingest(
        [parse_document(p, t) for p, t in DOCS.items()]
    )
    return Answerer(Retriever(index, encoder), model)


def cites_first_source(messages: Sequence[ChatMessage]) -> str:
    return "A topic is a named bus [1]. Also see [7]."


async def test_generated_answer_cites_only_sources_that_exist() -> None:
    model = Model(cites_first_source)
    answer = await (await answerer(model)).answer("What is a topic?")
    assert answer.mode is AnswerMode.GENERATED
    assert answer.text == "A topic is a named bus [1]. Also see."
    assert [c.number for c in answer.citations] == [1]
    assert answer.citations[0].route == "/docs/topics"
    assert answer.usage == Usage(10, 5)
    system = model.calls[0][0].content
    assert "[1] Topics" in system and "named bus" in system


async def test_model_down_falls_back_to_extractive_and_says_so() -> None:
    answer = await (await answerer(Model(cites_first_source, fail=True))).answer("What is a topic?")
    assert answer.mode is AnswerMode.EXTRACTIVE
    assert answer.degraded == ("openai",)
    assert answer.citations and "[1]" in answer.text


class DownEmbedder:
    """An embedder on the same server as the chat model, down with it."""

    model = "down-embedder"
    dimension = 8

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        raise DependencyUnavailable("openai", "DeadlineExceeded")


async def test_one_dependency_down_for_embeddings_and_chat_is_named_once() -> None:
    index, encoder = InMemoryIndex(), LexicalEncoder()
    await Ingestor(index, encoder, Chunker()).ingest(
        [parse_document(p, t) for p, t in DOCS.items()]
    )
    model = Model(cites_first_source, fail=True)
    answering = Answerer(Retriever(index, encoder, DownEmbedder()), model)
    answer = await answering.answer("What is a topic?")
    assert answer.mode is AnswerMode.EXTRACTIVE and answer.retrieval == "lexical"
    assert answer.degraded == ("openai",)  # not ("openai", "openai")
    events = [event async for event in answering.stream("What is a topic?")]
    final = events[-1]
    assert isinstance(final, AnswerComplete) and final.answer.degraded == ("openai",)


async def test_follow_up_is_rewritten_for_retrieval() -> None:
    def reply(messages: Sequence[ChatMessage]) -> str:
        if messages[0].content.startswith("Rewrite"):
            return "How does Gazebo simulate robots?"
        return "It uses physics engines [1]."

    model = Model(reply)
    now = datetime.now(UTC)
    history = [
        Message("1", "s", Role.USER, "Tell me about Gazebo", now),
        Message("2", "s", Role.ASSISTANT, "Gazebo is a simulator [1].", now),
    ]
    answer = await (await answerer(model)).answer("How does it do that?", history=history)
    assert answer.citations[0].route == "/docs/gazebo"
    answering_prompt = model.calls[1]
    assert [m.content for m in answering_prompt[1:3]] == [
        "Tell me about Gazebo",
        "Gazebo is a simulator [1].",
    ]
    assert answer.usage == Usage(20, 10)  # the rewrite and the answer


async def test_a_failed_rewrite_means_no_second_call_to_the_same_model() -> None:
    """A follow-up whose rewrite finds the model down is answered extractively at once:
    a hung model costs the question one deadline, not two."""
    model = Model(cites_first_source, fail=True)
    now = datetime.now(UTC)
    history = [
        Message("1", "s", Role.USER, "Tell me about topics", now),
        Message("2", "s", Role.ASSISTANT, "Topics are buses [1].", now),
    ]
    answering = await answerer(model)
    answer = await answering.answer("What is a topic?", history=history)
    assert answer.mode is AnswerMode.EXTRACTIVE and answer.degraded == ("openai",)
    assert len(model.calls) == 1  # the rewrite only
    events = [e async for e in answering.stream("What is a topic?", history=history)]
    final = events[-1]
    assert isinstance(final, AnswerComplete) and final.answer.mode is AnswerMode.EXTRACTIVE
    assert final.answer.degraded == ("openai",) and len(model.calls) == 2


async def test_selection_is_source_one_and_survives_an_index_outage() -> None:
    model = Model(lambda m: "It says the robot walks [1].")
    answer = await (await answerer(model, DownIndex())).answer(
        "What does this say?", selected_text="The robot walks on two legs."
    )
    assert answer.citations[0].title == "Selected text" and answer.citations[0].chunk_id is None
    assert answer.degraded == ("qdrant",) and answer.retrieval == "none"
    assert "primary source" in model.calls[0][0].content


async def test_index_outage_without_selection_propagates() -> None:
    with pytest.raises(DependencyUnavailable):
        await (await answerer(None, DownIndex())).answer("What is a topic?")


async def test_stream_events_in_order_and_deltas_make_the_answer() -> None:
    model = Model(lambda m: "A topic is a bus [1].")
    events = [e async for e in (await answerer(model)).stream("What is a topic?")]
    assert isinstance(events[0], SourcesFound) and events[0].sources
    assert isinstance(events[-1], AnswerComplete)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip() == events[-1].answer.text
    assert events[-1].answer.usage == Usage(10, 5)


async def test_closing_the_stream_early_closes_the_model_stream() -> None:
    model = Model(lambda m: "one two three four five [1].")
    stream = (await answerer(model)).stream("What is a topic?")
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    assert model.closed == 1


async def test_chat_stream_stores_the_partial_answer_when_the_client_leaves() -> None:
    model = Model(lambda m: "one two three four five [1].")
    store = InMemoryConversationStore()
    chat = ChatService(await answerer(model), store, SystemClock(), UuidGenerator())
    stream = chat.stream("What is a topic?", user_id="u1")
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    [session] = await store.list_sessions("u1", 10, 0)
    user, assistant = await store.messages(session.id)
    assert user.content == "What is a topic?"
    assert assistant.content == "one " and assistant.role is Role.ASSISTANT


async def test_chat_stream_final_event_carries_the_session() -> None:
    store = InMemoryConversationStore()
    chat = ChatService(await answerer(None), store, SystemClock(), UuidGenerator())
    events = [e async for e in chat.stream("What is a topic?", user_id="u1")]
    final = events[-1]
    assert isinstance(final, AnswerComplete) and final.session_id
    assert len(await store.messages(final.session_id)) == 2


async def test_without_a_model_a_neighbouring_chunk_can_answer_for_a_code_passage() -> None:
    index, encoder = InMemoryIndex(), LexicalEncoder()
    page = (
        "# Gazebo\n\n## Physics\n\n```xml\n<physics type='ode'><gazebo/></physics>\n"
        "<physics><engine/><gazebo/></physics>\n```\n\n"
        "## Engines\n\nIt runs on ODE, Bullet, Simbody or DART, chosen per world.\n"
    )
    chunker = Chunker(max_chars=80, overlap_chars=0)
    await Ingestor(index, encoder, chunker).ingest([parse_document("docs/gazebo.md", page)])
    question = "gazebo physics"
    alone = await Answerer(Retriever(index, encoder, limit=1), None).answer(question)
    assert alone.text.startswith("The answer is in the code example")
    wide = Retriever(index, encoder, limit=1, widen_chars=1000)
    answer = await Answerer(wide, None).answer(question)
    assert answer.text == "It runs on ODE, Bullet, Simbody or DART, chosen per world. [1]"


async def test_an_answer_the_docs_do_not_cover_is_uncertain() -> None:
    extractive = await answerer(None)
    assert not (await extractive.answer("What is a topic?")).uncertain
    far = await extractive.answer("How long should I boil fresh pasta?")
    assert far.uncertain
    # A sentence fits ("physics engines"), but half the question is nowhere in the docs.
    half = await extractive.answer("How do I boil pasta with physics engines?")
    assert half.text.startswith("Gazebo simulates robots") and half.uncertain
    streamed = [e async for e in extractive.stream("How long should I boil fresh pasta?")]
    assert isinstance(streamed[-1], AnswerComplete) and streamed[-1].answer.uncertain


async def test_a_model_answer_that_cites_no_source_is_uncertain() -> None:
    cited = await answerer(Model(cites_first_source))
    assert not (await cited.answer("What is a topic?")).uncertain
    uncited = await answerer(Model(lambda _: "The sources do not say."))
    assert (await uncited.answer("What is a topic?")).uncertain
    events = [e async for e in uncited.stream("What is a topic?")]
    assert isinstance(events[-1], AnswerComplete) and events[-1].answer.uncertain


async def test_a_question_about_the_readers_selection_is_not_uncertain() -> None:
    extractive = await answerer(None)
    answer = await extractive.answer("explain this", selected_text="Gazebo simulates robots.")
    assert not answer.uncertain


async def test_an_answer_names_the_question_terms_its_sources_lack() -> None:
    extractive = await answerer(None)
    answer = await extractive.answer("How do I boil pasta with physics engines?")
    assert answer.missing_terms == ("boil", "pasta")
    assert (await extractive.answer("What is a topic?")).missing_terms == ()
