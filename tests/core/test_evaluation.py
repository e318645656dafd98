"""The evaluation harness: label parsing, the metrics, and the CLI on a tiny fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import main
from rag_core.errors import InvalidInput
from rag_core.evaluation import EvalOutcome, EvalQuestion, contains_any, load_questions, score


def test_contains_any_matches_normalised_whole_words() -> None:
    assert contains_any("A **node** is an `executable`.", ["node is an executable"])
    assert not contains_any("nodes", ["node"])


def test_load_questions_names_the_bad_line() -> None:
    with pytest.raises(InvalidInput, match="line 2"):
        load_questions(['{"question": "a?"}', "not json"])


def test_score_counts_hits_recall_accuracy_and_quotes() -> None:
    q = EvalQuestion("1", "What is X?", ("/x",), ("x is a thing",))
    good = EvalOutcome(q, ("/y", "/x"), context="X is a thing.", answer="X is a thing. [1]")
    echo = EvalOutcome(q, ("/z",), answer="What is X? [1]", headings=("X",))
    figures = score([good, echo], k=5)
    assert figures["hit@1"] == 0.0
    assert figures["hit@3"] == 0.5
    assert figures["mrr"] == 0.25
    assert figures["context_recall"] == 0.5
    assert figures["answer_accuracy"] == 0.5
    assert figures["quotes_question_or_heading"] == 1


def test_score_counts_uncertain_answers_apart_for_unanswerable_questions() -> None:
    answerable = EvalQuestion("1", "What is X?", ("/x",), ("x is a thing",))
    unanswerable = EvalQuestion("2", "What is pasta?", (), ())
    figures = score(
        [
            EvalOutcome(answerable, ("/x",), answer="X is a thing. [1]"),
            EvalOutcome(answerable, ("/y",), answer="Y. [1]", uncertain=True),
            EvalOutcome(unanswerable, ("/y",), answer="Y. [1]", uncertain=True),
        ]
    )
    assert figures["uncertain"] == 2
    assert figures["uncertain_answerable"] == 1
    assert figures["uncertain_unanswerable"] == 1


def test_eval_command_ingests_and_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "nodes.md").write_text(
        "# Nodes\n\nA node is a process that performs computation in the graph.\n"
    )
    (docs / "other.md").write_text("# Cooking\n\nBoil the pasta for ten minutes in salted water.\n")
    questions = tmp_path / "q.jsonl"
    label = {
        "id": "n",
        "question": "What is a node?",
        "pages": ["/docs/nodes"],
        "answers": ["process that performs computation"],
    }
    far = {"id": "p", "question": "How do I bake sourdough bread?", "pages": [], "answers": []}
    questions.write_text(json.dumps(label) + "\n" + json.dumps(far) + "\n")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "unused"))
    out = tmp_path / "report.json"
    assert main(["eval", str(questions), "--docs", str(docs), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["all"]
    assert figures["hit@1"] == 1.0
    assert figures["answer_accuracy"] == 1.0
    assert (figures["uncertain_answerable"], figures["uncertain_unanswerable"]) == (0, 1)
    assert "hit@5" in capsys.readouterr().out
