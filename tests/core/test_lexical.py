import re
import uuid
from pathlib import Path

import pytest
from snowballstemmer.english_stemmer import EnglishStemmer

from adapters.memory.index import InMemoryIndex
from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.lexical import LexicalEncoder, term_id, tokenize
from rag_core.ports import SearchQuery

# Two terms whose 4-byte ids collide, found once by brute force.
COLLIDING = ("qbjcmk", "qcdwlg")


def test_term_ids_are_the_same_in_every_process() -> None:
    # Hard-coded: if these change, every stored sparse vector is silently wrong.
    assert term_id("publish") == 2586831194
    assert term_id("node") == 866345280
    assert term_id("زبان") == 583640541


def test_the_stemmer_is_snowballs_c_build_and_stems_as_the_pure_python_one() -> None:
    """PyStemmer (a dependency) makes snowballstemmer use Snowball's C build, ~20x faster
    on words not seen yet; a stored index must not care which one stemmed it."""
    from rag_core import lexical

    assert type(lexical._STEMMER).__module__ == "Stemmer"
    root = Path(__file__).resolve().parents[2]
    pages = [root / "README.md", root / "architecture.md", *sorted((root / "docs").glob("*.md"))]
    words = {w.lower() for page in pages for w in re.findall(r"[A-Za-z]+", page.read_text())}
    assert len(words) > 2000
    python = EnglishStemmer()
    differ = [w for w in words if lexical._STEMMER.stemWord(w) != python.stemWord(w)]
    assert differ == []


def test_term_ids_fit_uint32() -> None:
    for term in ["a", "ros", "humanoid", "x" * 500, "زبان"]:
        assert 0 <= term_id(term) < 2**32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Publishers publish", ["publish", "publish"]),
        ("rclpy.node", ["rclpi", "node", "rclpynod"]),
        (
            "node.create_publisher",
            ["node", "creat", "publish", "createpublish", "nodecreatepublish"],
        ),
        ("create_publisher", ["creat", "publish", "createpublish"]),
        ("createPublisher", ["creat", "publish", "createpublish"]),
        ("ROS 2", ["ros", "2"]),
        ("ROS2", ["ros", "2", "ros2"]),
        ("a I 7 x of", ["7"]),
        ("__init__", ["init"]),
        ("robot's", ["robot"]),
        ("version 1.5", ["version", "1", "5"]),
        ("real-time", ["real", "time", "realtim"]),
        ("e.g. this", []),
        ("", []),
        ("  \n\t", []),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_tokenize_keeps_words_of_other_scripts_whole() -> None:
    # Combining marks (the Urdu zer/pesh, Devanagari vowel signs) stay inside words.
    assert tokenize("اُردو زبان") == ["اُردو", "زبان"]
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]


def test_identifier_and_prose_share_terms() -> None:
    assert set(tokenize("create a publisher")) < set(tokenize("node.create_publisher()"))


def _weight(vector: SparseVector, term: str) -> float:
    return dict(zip(vector.indices, vector.values, strict=True))[term_id(term)]


def _filler(count: int) -> str:
    """``count`` distinct made-up words, one term each."""
    return " ".join("zz" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(count))


def test_term_frequency_saturates() -> None:
    encoder = LexicalEncoder()
    once_text = "gripper " + _filler(20)
    many_text = "gripper " * 10 + _filler(11)
    assert len(tokenize(once_text)) == len(tokenize(many_text)) == 21
    once = _weight(encoder.encode_document(once_text), "gripper")
    many = _weight(encoder.encode_document(many_text), "gripper")
    assert once < many < 10 * once
    assert many < encoder.k1 + 1


def test_longer_documents_weigh_a_term_less() -> None:
    encoder = LexicalEncoder(avg_length=20)
    short = encoder.encode_document("gripper torque")
    long = encoder.encode_document("gripper " + _filler(60))
    assert _weight(long, "gripper") < _weight(short, "gripper")


def test_b_zero_ignores_length() -> None:
    encoder = LexicalEncoder(b=0.0)
    short = encoder.encode_document("gripper torque")
    long = encoder.encode_document("gripper " + _filler(60))
    assert _weight(long, "gripper") == pytest.approx(_weight(short, "gripper"))


def test_vectors_are_sorted_and_unique() -> None:
    vector = LexicalEncoder().encode_document("zeta alpha node nodes gamma alpha beta delta")
    assert list(vector.indices) == sorted(set(vector.indices))
    assert len(vector.indices) == len(set(tokenize("zeta alpha node gamma beta delta")))


def test_query_weights_are_one_per_distinct_term() -> None:
    vector = LexicalEncoder().encode_query("nodes node publisher")
    assert vector.values == (1.0, 1.0)
    assert set(vector.indices) == {term_id("node"), term_id("publish")}


def test_colliding_terms_are_merged_by_summing() -> None:
    assert term_id(COLLIDING[0]) == term_id(COLLIDING[1])
    encoder = LexicalEncoder()
    text = " ".join(COLLIDING)
    assert encoder.encode_query(text) == SparseVector((term_id(COLLIDING[0]),), (2.0,))
    both = encoder.encode_document(text)
    one = encoder.encode_document(f"{COLLIDING[0]} gripper")
    assert both.values[0] == pytest.approx(2 * one.values[0])


@pytest.mark.parametrize("text", ["", "   ", "the of and", "```"])
def test_texts_without_terms_give_empty_vectors(text: str) -> None:
    encoder = LexicalEncoder()
    assert encoder.encode_document(text) == SparseVector((), ())
    assert encoder.encode_query(text) == SparseVector((), ())


@pytest.mark.parametrize("kwargs", [{"k1": -0.1}, {"b": 1.5}, {"b": -0.1}, {"avg_length": 0.0}])
def test_invalid_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LexicalEncoder(**kwargs)


def _chunk(text: str, ordinal: int) -> Chunk:
    return Chunk(
        id=str(uuid.UUID(int=ordinal + 1)),
        document_id=f"docs/page{ordinal}.md",
        ordinal=0,
        text=text,
        heading_path=(),
        content_hash=f"h{ordinal}",
        route=f"/docs/page{ordinal}",
        title=f"Page {ordinal}",
    )


async def _search(texts: list[str], query: str) -> list[str]:
    encoder = LexicalEncoder(avg_length=12)
    index = InMemoryIndex()
    await index.prepare(None)
    await index.upsert(
        [
            IndexedChunk(chunk=_chunk(text, i), sparse=encoder.encode_document(text))
            for i, text in enumerate(texts)
        ]
    )
    passages = await index.search(SearchQuery(sparse=encoder.encode_query(query), limit=10))
    return [p.chunk.text for p in passages]


async def test_a_rare_query_term_outranks_common_ones() -> None:
    common = "robots use sensors and motors to move robots around"
    rare = "a lidar scanner measures distance"
    texts = [common, rare, *(f"robots move with motors, part {i}" for i in range(6))]
    ranked = await _search(texts, "robots motors lidar")
    assert ranked[0] == rare


async def test_stemming_matches_inflections() -> None:
    texts = ["each publisher sends messages", "subscribers receive data", "timers fire"]
    assert await _search(texts, "publishers") == ["each publisher sends messages"]


async def test_exact_identifier_outranks_prose_mentioning_its_parts() -> None:
    prose = "create a node, then add a publisher to it"
    code = "call node.create_publisher to make one"
    texts = [prose, code, "spin the executor", "timers fire callbacks"]
    ranked = await _search(texts, "create_publisher")
    assert ranked[:2] == [code, prose]


def test_heading_terms_count_more_than_the_same_terms_in_the_text() -> None:
    encoder = LexicalEncoder()
    body = _filler(10)
    in_text = encoder.encode_document(f"gripper {body}")
    in_heading = encoder.encode_document(body, heading="gripper")
    assert _weight(in_heading, "gripper") > _weight(in_text, "gripper")
    assert encoder.encode_document(body, heading="") == encoder.encode_document(body)


def test_the_average_length_fits_the_chunkers_sections() -> None:
    # Measured on two corpora chunked by Chunker(): 86 and 105 terms per chunk on average.
    assert 80 <= LexicalEncoder().avg_length <= 110
