"""Small-to-big: a passage read with the neighbouring chunks of its section."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from rag_core.answers import Passage
from rag_core.context import (
    _MAX_OVERLAP,
    _MIN_OVERLAP,
    NEIGHBOUR_WEIGHT,
    _overlap,
    neighbours,
    widen,
)
from rag_core.documents import Chunk


def chunk(ordinal: int, text: str, heading_path: tuple[str, ...] = ("Topics", "Basics")) -> Chunk:
    return Chunk(
        id=str(uuid.UUID(int=ordinal + 1)),
        document_id="docs/topics.md",
        ordinal=ordinal,
        text=text,
        heading_path=heading_path,
        content_hash=f"h{ordinal}",
        route="/docs/topics",
        title="Topics",
    )


STORED = [
    chunk(0, "Elsewhere entirely.", ("Other",)),
    chunk(1, "Topics are named buses. Nodes exchange messages over them."),
    chunk(2, "Nodes exchange messages over them. A publisher writes to a topic."),
    chunk(3, "A subscriber reads from it.", ("Topics", "Subscribers")),
    chunk(4, "Unrelated section.", ("Services",)),
]


def test_a_passage_is_read_with_its_section_neighbours_without_the_repeated_overlap() -> None:
    [wide] = widen([Passage(STORED[2], 1.0, 1)], STORED, max_chars=1000)
    assert wide.chunk.text == (
        "Topics are named buses. Nodes exchange messages over them.\n\n"
        "A publisher writes to a topic.\n\n"
        "A subscriber reads from it."
    )
    assert wide.chunk.id == STORED[2].id and wide.score == 1.0


def test_the_budget_stops_the_widening_and_retrieved_neighbours_are_left_to_themselves() -> None:
    [wide] = widen([Passage(STORED[2], 1.0, 1)], STORED, max_chars=len(STORED[2].text) + 10)
    assert wide.chunk.text == STORED[2].text
    first, second = widen(
        [Passage(STORED[2], 1.0, 1), Passage(STORED[1], 0.5, 2)], STORED, max_chars=1000
    )
    assert "Topics are named buses" not in first.chunk.text
    assert "A publisher writes" not in second.chunk.text


def test_the_neighbours_of_passages_are_passages_ranked_after_them() -> None:
    near = neighbours([Passage(STORED[2], 0.8, 1)], STORED)
    # Within the passage's parent section ("Topics"), nearest first, after then before.
    assert [p.chunk.ordinal for p in near] == [3, 1]
    assert [p.rank for p in near] == [2, 3]
    assert all(p.score == 0.8 * NEIGHBOUR_WEIGHT for p in near)


def test_a_neighbour_is_listed_once_and_never_when_it_was_retrieved() -> None:
    near = neighbours([Passage(STORED[2], 1.0, 1), Passage(STORED[3], 0.5, 2)], STORED)
    assert [p.chunk.ordinal for p in near] == [1]
    assert neighbours([], STORED) == []


def _overlap_by_every_size(text: str, following: str) -> int:
    """The definition: the longest size, from the most down to the least, that repeats."""
    for size in range(min(len(text), len(following), _MAX_OVERLAP), _MIN_OVERLAP - 1, -1):
        if text.endswith(following[:size]):
            return size
    return 0


@given(
    st.text(alphabet="ab ", max_size=600),
    st.integers(0, 450),
    st.text(alphabet="ab ", max_size=40),
    st.booleans(),
)
def test_the_overlap_is_the_longest_repeated_run(
    base: str, back: int, extra: str, unrelated: bool
) -> None:
    cut = len(base) // 2
    text = base[:cut]
    following = extra if unrelated else base[max(0, cut - back) :] + extra
    assert _overlap(text, following) == _overlap_by_every_size(text, following)
