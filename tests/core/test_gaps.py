"""Grouping uncertain questions into coverage gaps."""

from __future__ import annotations

import pytest

from rag_core.gaps import group, shared_terms

DRONES = [
    "drone license flight rules",
    "which license to fly a drone",
    "drone flight height rules",
]
PRINTING = ["3d printer filament", "printer filament temperature", "best 3d printer bed"]


def test_paraphrases_of_one_topic_group_together_largest_first() -> None:
    questions = [DRONES[0], PRINTING[0], DRONES[1], PRINTING[1], DRONES[2], "capstone"]
    groups = group(questions)
    assert [[questions[i] for i in g] for g in groups[:2]] == [
        [DRONES[0], DRONES[1], DRONES[2]],
        [PRINTING[0], PRINTING[1]],
    ]
    assert sorted(i for g in groups for i in g) == list(range(len(questions)))


def test_a_question_sharing_a_word_with_two_topics_does_not_chain_them() -> None:
    bridge = "drone printer"
    groups = group([*DRONES, bridge, *PRINTING])
    assert all(len(g) < 5 for g in groups)


def test_embeddings_join_questions_that_share_no_word() -> None:
    questions = ["boil pasta", "cook spaghetti"]
    assert len(group(questions)) == 2
    assert group(questions, [(1.0, 0.1), (0.9, 0.2)]) == [[0, 1]]
    with pytest.raises(ValueError):
        group(questions, [(1.0, 0.0)])


def test_shared_terms_label_a_group_as_written() -> None:
    assert shared_terms(DRONES)[:2] == ["drone", "license"]  # 3 uses, then 2 (first used)
    assert shared_terms(["Kubernetes pods?"]) == ["kubernetes", "pods"]
    assert group([]) == []
