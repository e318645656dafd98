"""The "uncertain" signal: how much of a question the retrieved text covers."""

from __future__ import annotations

import pytest

from rag_core.confidence import MIN_COVERAGE, coverage, is_uncertain, judge, missing


def test_coverage_is_the_share_of_question_terms_the_texts_contain() -> None:
    texts = ["A topic is a named bus.", "Nodes exchange messages."]
    assert coverage("What is a topic?", texts) == 1.0
    assert coverage("How do nodes talk?", texts) == 0.5  # "node" found, "talk" not
    assert coverage("How long should I boil fresh pasta?", texts) == 0.0


def test_terms_are_matched_as_the_index_matches_them() -> None:
    # Stemmed and case-folded, stop words ignored.
    assert coverage("PUBLISHING topics", ["A publisher publishes on a topic."]) == 1.0


def test_a_question_with_no_terms_is_not_flagged_by_coverage() -> None:
    assert coverage("what is it?", ["anything"]) == 1.0


@pytest.mark.parametrize(
    ("question", "expected"),
    [("How do I boil pasta for a robot?", True), ("What is a topic bus?", False)],
)
def test_uncertain_below_the_minimum_coverage(question: str, expected: bool) -> None:
    assert 0 < MIN_COVERAGE < 1
    assert is_uncertain(question, ["A topic is a named bus for a robot."]) is expected


def test_nothing_retrieved_is_uncertain() -> None:
    assert is_uncertain("What is a topic?", [])


def test_missing_names_the_terms_no_text_holds_in_question_order() -> None:
    texts = ["A topic is a named bus.", "Nodes exchange messages."]
    assert missing("How do nodes talk to topics in Kubernetes?", texts) == ("talk", "kubernet")
    assert missing("What is a topic?", texts) == ()


def test_judge_is_is_uncertain_and_missing_at_once() -> None:
    texts = ["A topic is a named bus."]
    for question in ["What is a topic?", "How do I boil pasta on a bus?", "what is it?"]:
        assert judge(question, texts) == (is_uncertain(question, texts), missing(question, texts))
    assert judge("What is a topic?", []) == (True, ("topic",))
