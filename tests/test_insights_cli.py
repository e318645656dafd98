"""`rag-backend insights`: the report from the embedded defaults' question log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import main


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "topics.md").write_text("# Topics\n\nA topic is a named bus for messages.\n")
    (docs / "gazebo.md").write_text("# Gazebo\n\nGazebo simulates robots.\n")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["ingest", str(docs)]) == 0
    for question in ["How long do I boil pasta?", "Boiling time for pasta?", "What is a topic?"]:
        assert main(["ask", question]) == 0
    return tmp_path


def test_the_report_in_each_format(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["insights", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["questions"], report["uncertain"]) == (3, 2)
    assert report["coverage_gaps"][0]["size"] == 2
    assert report["pages_never_cited"] == ["/docs/gazebo"]
    assert main(["insights", "--format", "csv", "--since", "2d"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "section,key,count,detail"
    assert any(row.startswith("coverage_gap,") for row in rows)
    assert main(["insights"]) == 0
    table = capsys.readouterr().out
    assert "Coverage gaps" in table and "How long do I boil pasta?" in table


def test_a_bad_since_is_one_line_and_exit_2(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["insights", "--since", "last tuesday"]) == 2
    assert capsys.readouterr().err.startswith("error: since:")
