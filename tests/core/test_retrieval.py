import hashlib
import re
import uuid
from collections.abc import Sequence

import attrs
import pytest

from adapters.memory.index import InMemoryIndex
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk
from rag_core.errors import DependencyUnavailable, InvalidInput
from rag_core.lexical import LexicalEncoder
from rag_core.ports import SearchQuery
from rag_core.retrieval import Retriever

DIMENSION = 64  # blake2b digest bytes: one per component
# The fake embedder's "semantics": words that mean the same land on the same vector.
SYNONYMS = {"automobile": "car", "vehicle": "car"}


class HashEmbedder:
    """Deterministic bag-of-words embeddings: each word's vector comes from its hash."""

    model = "fake-hash"
    dimension = DIMENSION

    def __init__(self, extra_vectors: int = 0) -> None:
        self.calls: list[list[str]] = []
        self._extra = extra_vectors

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls.append(list(texts))
        vectors = [self._vector(text) for text in texts]
        return vectors + vectors[: self._extra]

    @staticmethod
    def _vector(text: str) -> tuple[float, ...]:
        total = [0.0] * DIMENSION
        for word in re.findall(r"\w{3,}", text.lower()):
            digest = hashlib.blake2b(SYNONYMS.get(word, word).encode(), digest_size=DIMENSION)
            for i, byte in enumerate(digest.digest()):
                total[i] += byte / 255 - 0.5
        return tuple(total)


class RecordingIndex(InMemoryIndex):
    """The in-memory index, remembering the queries it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[SearchQuery] = []

    async def search(self, query: SearchQuery) -> list[Passage]:
        self.queries.append(query)
        return await super().search(query)


_ids = iter(range(1, 10_000))


def _chunk(text: str, document: str, section: str = "docs/week1") -> Chunk:
    number = next(_ids)
    return Chunk(
        id=str(uuid.UUID(int=number)),
        document_id=document,
        ordinal=number,
        text=text,
        heading_path=(),
        content_hash=f"hash{number}",
        route=f"/{document}",
        title=document,
        section=section,
    )


async def _index(chunks: Sequence[Chunk], embedder: HashEmbedder | None = None) -> RecordingIndex:
    encoder = LexicalEncoder()
    index = RecordingIndex()
    await index.prepare(DIMENSION if embedder else None)
    dense = await embedder.embed([c.text for c in chunks]) if embedder else [None] * len(chunks)
    await index.upsert(
        [
            IndexedChunk(chunk=c, sparse=encoder.encode_document(c.text), dense=d)
            for c, d in zip(chunks, dense, strict=True)
        ]
    )
    if embedder:
        embedder.calls.clear()
    return index


CORPUS = [
    _chunk("A publisher sends messages on a topic.", "docs/week1/topics.md"),
    _chunk("A subscriber receives messages from a topic.", "docs/week1/topics.md"),
    _chunk("Services answer requests with responses.", "docs/week1/services.md"),
    _chunk("The car drives itself with lidar and cameras.", "docs/week2/cars.md", "docs/week2"),
    _chunk("Humanoid robots walk on two legs.", "docs/week2/humanoids.md", "docs/week2"),
]


async def test_lexical_mode_ranks_matching_passages() -> None:
    retriever = Retriever(await _index(CORPUS), LexicalEncoder())
    assert retriever.mode == "lexical"
    passages = await retriever.retrieve("Which topic carries the publisher's messages?")
    assert [p.chunk.id for p in passages][:2] == [CORPUS[0].id, CORPUS[1].id]
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    assert all(p.chunk.id != CORPUS[4].id for p in passages)


async def test_hybrid_mode_finds_what_words_alone_miss() -> None:
    embedder = HashEmbedder()
    index = await _index(CORPUS, embedder)
    lexical = Retriever(index, LexicalEncoder())
    hybrid = Retriever(index, LexicalEncoder(), embedder)
    assert hybrid.mode == "hybrid"
    assert await lexical.retrieve("automobile") == []
    passages = await hybrid.retrieve("automobile", limit=1)
    assert [p.chunk.id for p in passages] == [CORPUS[3].id]
    assert embedder.calls == [["automobile"]]
    assert index.queries[-1].dense == HashEmbedder._vector("automobile")


async def test_the_index_is_asked_for_candidates_with_both_vectors() -> None:
    embedder = HashEmbedder()
    index = await _index(CORPUS, embedder)
    retriever = Retriever(index, LexicalEncoder(), embedder, limit=2, candidates=10)
    await retriever.retrieve("publisher topic")
    (query,) = index.queries
    assert query.limit == 10
    assert query.sparse == LexicalEncoder().encode_query("publisher topic")
    assert query.dense is not None


async def test_at_most_max_per_document_passages_of_one_document() -> None:
    crowded = [
        _chunk(f"Joint torque control, part {i}.", "docs/week3/control.md") for i in range(5)
    ]
    other = _chunk("Joint torque sensors measure load.", "docs/week3/sensors.md")
    retriever = Retriever(await _index([*crowded, other]), LexicalEncoder(), max_per_document=2)
    passages = await retriever.retrieve("joint torque", limit=3)
    documents = [p.chunk.document_id for p in passages]
    assert sorted(documents) == ["docs/week3/control.md"] * 2 + ["docs/week3/sensors.md"]
    assert [p.rank for p in passages] == [1, 2, 3]


async def test_the_cap_keeps_search_order() -> None:
    chunks = [
        _chunk("gripper gripper gripper fingers", "a.md"),
        _chunk("gripper gripper fingers", "a.md"),
        _chunk("gripper fingers and palm", "a.md"),
        _chunk("gripper with a palm and wrist", "b.md"),
    ]
    index = await _index(chunks)
    unlimited = await Retriever(index, LexicalEncoder(), max_per_document=9).retrieve("gripper")
    capped = await Retriever(index, LexicalEncoder(), max_per_document=1).retrieve("gripper")
    order = [p.chunk.id for p in unlimited]
    kept = [p.chunk.id for p in capped]
    assert kept == [i for i in order if i in kept]
    assert len(kept) == 2


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"document_id": "docs/week1/services.md"}, [2]),
        ({"section": "docs/week2"}, [3, 4]),
        ({"section": "docs/week9"}, []),
    ],
)
async def test_filters_are_passed_to_the_index(
    filters: dict[str, str], expected: list[int]
) -> None:
    index = await _index(CORPUS)
    retriever = Retriever(index, LexicalEncoder())
    query = "publisher subscriber services requests car lidar humanoid robots"
    passages = await retriever.retrieve(query, filters=filters)
    assert sorted(p.chunk.id for p in passages) == sorted(CORPUS[i].id for i in expected)
    assert index.queries[-1].filters == filters


async def test_limit_defaults_to_the_configured_one() -> None:
    chunks = [_chunk(f"Balance control for humanoids, note {i}.", f"d{i}.md") for i in range(8)]
    retriever = Retriever(await _index(chunks), LexicalEncoder(), limit=3)
    assert len(await retriever.retrieve("balance")) == 3
    assert len(await retriever.retrieve("balance", limit=5)) == 5


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
async def test_blank_queries_are_invalid(query: str) -> None:
    retriever = Retriever(await _index(CORPUS), LexicalEncoder())
    with pytest.raises(InvalidInput):
        await retriever.retrieve(query)


async def test_a_limit_below_one_is_invalid() -> None:
    retriever = Retriever(await _index(CORPUS), LexicalEncoder())
    with pytest.raises(InvalidInput):
        await retriever.retrieve("publisher", limit=0)


async def test_stop_words_only_find_nothing_lexically() -> None:
    index = await _index(CORPUS)
    assert await Retriever(index, LexicalEncoder()).retrieve("what is the") == []
    assert index.queries == []


async def test_stop_words_only_still_search_densely() -> None:
    embedder = HashEmbedder()
    index = await _index(CORPUS, embedder)
    passages = await Retriever(index, LexicalEncoder(), embedder).retrieve("what is the")
    assert passages
    assert index.queries[-1].sparse.indices == ()


async def test_an_embedder_returning_the_wrong_count_is_unavailable() -> None:
    embedder = HashEmbedder(extra_vectors=1)
    retriever = Retriever(await _index(CORPUS), LexicalEncoder(), embedder)
    with pytest.raises(DependencyUnavailable):
        await retriever.retrieve("publisher")


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"max_per_document": 0}, {"candidates": 0}])
def test_invalid_configuration_is_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Retriever(InMemoryIndex(), LexicalEncoder(), None, **kwargs)


async def test_objectives_and_review_questions_rank_after_the_prose() -> None:
    objectives = attrs.evolve(
        _chunk("- Understand topics and publishers and topics.", "docs/week1/topics.md"),
        heading_path=("Learning Objectives",),
    )
    review = attrs.evolve(
        _chunk("1. What is a topic? 2. How does a topic work?", "docs/week1/topics.md"),
        heading_path=("Review Questions",),
    )
    prose = _chunk("Topics: named buses over which nodes exchange messages.", "docs/week1/ros.md")
    retriever = Retriever(await _index([objectives, review, prose]), LexicalEncoder())
    passages = await retriever.retrieve("What is a topic?")
    assert [p.chunk.id for p in passages] == [prose.id, objectives.id, review.id]
    assert [p.rank for p in passages] == [1, 2, 3]
