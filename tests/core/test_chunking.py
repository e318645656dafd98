import itertools
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_core.chunking import Chunker, chunk_id
from rag_core.documents import Chunk, Document


def doc(text: str, document_id: str = "docs/week3/nodes.md", title: str = "Nodes") -> Document:
    return Document(id=document_id, route="/docs/week3/nodes", title=title, text=text)


def sentences(count: int, start: int = 0) -> str:
    return " ".join(f"Sentence number {i} is about robots." for i in range(start, start + count))


def code_block(lines: int, fence: str = "```") -> str:
    body = "\n".join(f"value_{i} = compute({i})  # step {i}" for i in range(lines))
    return f"{fence}python\n{body}\n{fence}"


def table(rows: int) -> str:
    return "\n".join(
        ["| Name | Value |", "|------|-------|", *(f"| row {i} | {i * i} |" for i in range(rows))]
    )


def chunks_containing(chunks: list[Chunk], text: str) -> list[Chunk]:
    return [chunk for chunk in chunks if text in chunk.text]


def numbered_words(count: int, start: int = 0) -> str:
    """Distinct words of varied length and no sentence end: ``w0 ww1 www2 w3 ...``."""
    return " ".join("w" * (1 + i % 3) + str(i) for i in range(start, start + count))


def assert_words_kept(pieces: list[str], text: str, overlap_chars: int) -> None:
    """The pieces hold the (distinct) words of ``text`` in order, none lost; a piece
    repeats the end of the one before only as overlap of at most ``overlap_chars``."""
    words = text.split()
    position = {word: i for i, word in enumerate(words)}
    assert len(position) == len(words), "the check needs distinct words"
    end = 0
    for piece in pieces:
        indices = [position[word] for word in piece.split()]
        start = indices[0]
        assert indices == list(range(start, start + len(indices)))
        assert start <= end < start + len(indices)  # no gap, and progress
        assert len(" ".join(words[start:end])) <= overlap_chars
        end = start + len(indices)
    assert end == len(words)


@pytest.mark.parametrize(("max_chars", "overlap"), [(100, 100), (100, 150), (100, -1), (0, 0)])
def test_invalid_settings_are_rejected(max_chars: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="max_chars > overlap_chars >= 0"):
        Chunker(max_chars, overlap)


def test_breadcrumbs_follow_the_heading_tree() -> None:
    text = "\n".join(
        [
            "Preamble before any heading.",
            "# ROS 2 Architecture",
            "Intro.",
            "## Nodes",
            "### Creating a node",
            "Create it.",
            "## Topics",
            "Topics carry messages.",
            "#### Deep",
            "Deep text.",
            "### Sibling",
            "Sibling text.",
        ]
    )
    chunks = Chunker().split(doc(text))
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "Preamble before any heading."),
        (("ROS 2 Architecture",), "Intro."),
        (("ROS 2 Architecture", "Nodes", "Creating a node"), "Create it."),
        (("ROS 2 Architecture", "Topics"), "Topics carry messages."),
        (("ROS 2 Architecture", "Topics", "Deep"), "Deep text."),
        (("ROS 2 Architecture", "Topics", "Sibling"), "Sibling text."),
    ]
    assert chunks[2].breadcrumb == "Nodes > ROS 2 Architecture > Nodes > Creating a node"


def test_chunk_fields() -> None:
    chunks = Chunker(max_chars=200, overlap_chars=0).split(doc("# Nodes\n\n" + sentences(12)))
    assert len(chunks) > 2
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert {c.document_id for c in chunks} == {"docs/week3/nodes.md"}
    assert {c.section for c in chunks} == {"docs/week3"}
    assert {c.route for c in chunks} == {"/docs/week3/nodes"}
    assert {c.title for c in chunks} == {"Nodes"}
    assert len({c.id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert chunk.id == chunk_id(chunk.document_id, chunk.ordinal, chunk.content_hash)
        assert re.fullmatch(r"[0-9a-f]{32}", chunk.content_hash)
    top_level = Chunker().split(doc("Text.", document_id="README.md"))
    assert top_level[0].section == ""


def test_chunk_text_excludes_the_heading_line() -> None:
    [chunk] = Chunker().split(doc("## Setup\n\nRun the installer."))
    assert chunk.text == "Run the installer."


def test_headings_without_body_and_blank_documents_give_no_chunks() -> None:
    chunks = Chunker().split(doc("# Title\n\n## Empty\n\n## Full\n\nBody."))
    assert [c.heading_path for c in chunks] == [("Title", "Full")]
    assert Chunker().split(doc("  \n\n\t\n")) == []
    assert Chunker().split(doc("")) == []


def test_headings_inside_code_fences_are_code() -> None:
    text = "# Real\n\n```bash\n# install it\napt install ros\n```\n"
    [chunk] = Chunker().split(doc(text))
    assert chunk.heading_path == ("Real",)
    assert "# install it" in chunk.text


def test_a_code_fence_is_never_split() -> None:
    code = code_block(12)  # about 450 chars
    text = f"# Code\n\n{sentences(8)}\n\n{code}\n\n{sentences(8, start=100)}"
    chunks = Chunker(max_chars=600, overlap_chars=100).split(doc(text))
    assert len(chunks) >= 3
    assert len(chunks_containing(chunks, code)) == 1
    for chunk in chunks:
        assert chunk.text.count("```") % 2 == 0


@pytest.mark.parametrize("fence", ["~~~", "````"])
def test_other_fences_and_nested_backticks_stay_whole(fence: str) -> None:
    inner = "```\nthis is not the end\n```"
    filler = "line of sample text\n" * 20
    block = f"{fence}markdown\n{inner}\n{filler}{fence}"
    text = f"{sentences(5)}\n\n{block}\n\n{sentences(5)}"
    chunks = Chunker(max_chars=300, overlap_chars=50).split(doc(text))
    assert len(chunks_containing(chunks, block)) == 1


def test_a_table_is_never_split() -> None:
    rows = table(15)  # about 300 chars
    text = f"{sentences(6)}\n{rows}\nAfter the table."
    chunks = Chunker(max_chars=400, overlap_chars=100).split(doc(text))
    [holder] = chunks_containing(chunks, rows)
    for chunk in chunks:
        assert ("| row" in chunk.text) == (chunk is holder)
    # the table moved to a follow-on chunk, led in by whole sentences of overlap
    assert holder.text.startswith("Sentence number 4 is about robots.")


def test_oversized_blocks_stand_alone_and_are_never_dropped() -> None:
    code, rows = code_block(60), table(80)
    text = f"Before the code.\n\n{code}\n\nBetween.\n\n{rows}\n\nAfter."
    chunks = Chunker(max_chars=500, overlap_chars=100).split(doc(text))
    assert [c.text for c in chunks] == ["Before the code.", code, "Between.", rows, "After."]
    assert len(code) > 500 and len(rows) > 500


def test_long_paragraphs_split_at_sentence_boundaries_with_overlap() -> None:
    text = sentences(40)
    chunks = Chunker(max_chars=400, overlap_chars=120).split(doc(text))
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text) <= 400
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("robots.")
    for previous, current in itertools.pairwise(chunks):
        first_sentence = current.text[: current.text.index("robots.") + len("robots.")]
        overlap = previous.text[previous.text.rindex(first_sentence) :]
        assert current.text.startswith(overlap + " ")
        assert 0 < len(overlap) <= 120
    covered = " ".join(c.text for c in chunks)
    for i in range(40):
        assert f"Sentence number {i} is" in covered


def test_overlap_is_at_most_overlap_chars_of_whole_sentences() -> None:
    paragraphs = [sentences(3, start=10 * i) for i in range(6)]  # about 110 chars each
    chunks = Chunker(max_chars=300, overlap_chars=40).split(doc("\n\n".join(paragraphs)))
    assert len(chunks) > 1
    # each sentence is ~36 chars: one fits in 40, so every follow-on chunk opens with one
    for previous, current in itertools.pairwise(chunks):
        tail = previous.text[previous.text.rindex("Sentence number") :]
        assert len(tail) <= 40
        assert current.text.startswith(tail + "\n\n")
    no_overlap = Chunker(max_chars=300, overlap_chars=0).split(doc("\n\n".join(paragraphs)))
    assert sum(len(c.text) for c in no_overlap) < sum(len(c.text) for c in chunks)


def test_overlap_never_takes_code() -> None:
    code = code_block(5)
    text = f"{sentences(2)}\n\n{code}\n\n{sentences(10, start=50)}"
    chunks = Chunker(max_chars=len(code) + 100, overlap_chars=150).split(doc(text))
    assert len(chunks_containing(chunks, "value_0 = compute(0)")) == 1


def test_overlap_stays_within_a_section() -> None:
    text = f"# A\n\n{sentences(3)}\n\n# B\n\n{sentences(3, start=10)}"
    chunks = Chunker(max_chars=1000, overlap_chars=200).split(doc(text))
    assert [c.text for c in chunks] == [sentences(3), sentences(3, start=10)]


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "Intro.\n\n```python\nx = 1\n# Not a heading\nmore = 2"
    chunks = Chunker().split(doc(text))
    assert [c.heading_path for c in chunks] == [()]
    assert chunks[0].text.endswith("# Not a heading\nmore = 2")


def test_deterministic_and_content_addressed() -> None:
    text = f"# Title\n\n## Part\n\n{sentences(30)}"
    first = Chunker(max_chars=300).split(doc(text))
    assert first == Chunker(max_chars=300).split(doc(text))
    renamed = Chunker(max_chars=300).split(doc(text.replace("## Part", "## Section")))
    assert [c.text for c in renamed] == [c.text for c in first]
    assert all(
        a.id != b.id and a.content_hash != b.content_hash
        for a, b in zip(first, renamed, strict=True)
    )
    retitled = Chunker(max_chars=300).split(doc(text, title="Other"))
    assert retitled[0].id != first[0].id


def test_chunk_id_is_a_uuid_that_depends_on_every_part() -> None:
    base = chunk_id("docs/a.md", 0, "abc")
    assert str(uuid.UUID(base)) == base
    assert base == chunk_id("docs/a.md", 0, "abc")
    others = {chunk_id("docs/b.md", 0, "abc"), chunk_id("docs/a.md", 1, "abc")}
    others.add(chunk_id("docs/a.md", 0, "abd"))
    assert base not in others and len(others) == 3


def test_a_long_run_of_words_without_sentence_ends_is_cut_at_word_boundaries() -> None:
    text = numbered_words(30_000)
    assert len(text) > 200_000
    chunks = Chunker().split(doc(text))
    assert len(chunks) > 200_000 // 1500
    assert all(len(chunk.text) <= 1500 for chunk in chunks)
    assert_words_kept([chunk.text for chunk in chunks], text, overlap_chars=200)
    assert sum(len(chunk.text) for chunk in chunks) > 0.95 * len(text)  # chunks are well filled


def test_a_word_longer_than_max_chars_is_cut_hard() -> None:
    token = "".join(str(i) for i in range(3000))[:10_000]
    chunks = Chunker(max_chars=1500, overlap_chars=200).split(doc(token))
    assert [len(chunk.text) for chunk in chunks] == [1500] * 6 + [1000]
    assert "".join(chunk.text for chunk in chunks) == token
    text = f"Before it {token} after it."
    chunks = Chunker(max_chars=1500, overlap_chars=200).split(doc(text))
    assert all(len(chunk.text) <= 1500 for chunk in chunks)
    assert "".join(chunk.text.replace(" ", "") for chunk in chunks) == text.replace(" ", "")
    assert chunks[0].text == "Before it"
    assert chunks[-1].text.endswith(" after it.")


@pytest.mark.parametrize("joint", ["\n\n", " "])
def test_sentence_less_prose_between_sentences_is_cut_only_where_needed(joint: str) -> None:
    """As its own paragraph or as one huge sentence of a paragraph: only it is
    cut at words; every ordinary sentence around it stays whole."""
    run = numbered_words(300) + "."  # about 2000 chars, one sentence
    text = f"{sentences(5)}\n\n{sentences(3, start=10)}{joint}{run}{joint}{sentences(5, start=20)}"
    for overlap in (0, 120):
        chunks = Chunker(max_chars=400, overlap_chars=overlap).split(doc(text))
        assert all(len(chunk.text) <= 400 for chunk in chunks)
        for i in [*range(5), *range(10, 13), *range(20, 25)]:
            assert chunks_containing(chunks, f"Sentence number {i} is about robots.")
        if overlap == 0:
            assert " ".join(chunk.text for chunk in chunks).split() == text.split()
        run_words = [[w for w in c.text.split() if re.fullmatch(r"w+\d+\.?", w)] for c in chunks]
        assert_words_kept([" ".join(words) for words in run_words if words], run, overlap)


def test_an_over_long_code_block_or_table_stays_whole() -> None:
    code = f"```text\n{'x' * 3000}\n{numbered_words(400)}\n```"
    rows = "| Key | Value |\n|---|---|\n" + f"| long | {numbered_words(400)} |"
    text = f"Before.\n\n{code}\n\nBetween.\n\n{rows}\n\nAfter."
    chunks = Chunker(max_chars=500, overlap_chars=100).split(doc(text))
    assert [c.text for c in chunks] == ["Before.", code, "Between.", rows, "After."]


WORDS = st.text("abcxyz", min_size=1, max_size=40)
JOINTS = st.sampled_from([" ", " ", " ", "  ", "\t", ". ", "! ", "? ", "\n", "\n", "\n\n"])


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.tuples(WORDS, JOINTS), min_size=1, max_size=150),
    max_chars=st.integers(10, 300),
    overlap_fraction=st.sampled_from([0.0, 0.2, 0.5, 0.9]),
)
def test_prose_chunks_fit_and_keep_every_word(
    words: list[tuple[str, str]], max_chars: int, overlap_fraction: float
) -> None:
    # the number makes each word distinct, so that the overlap can be told apart
    text = "".join(f"{stem}{i}{joint}" for i, (stem, joint) in enumerate(words))
    overlap = int(max_chars * overlap_fraction)
    chunks = Chunker(max_chars, overlap).split(doc(text))
    assert all(len(chunk.text) <= max_chars for chunk in chunks)
    if overlap == 0:
        assert "".join("".join(c.text.split()) for c in chunks) == "".join(text.split())
    if max(len(word) for word in text.split()) <= max_chars:
        assert_words_kept([chunk.text for chunk in chunks], text, overlap)
