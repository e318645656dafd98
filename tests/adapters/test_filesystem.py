import logging
from pathlib import Path

import pytest

from adapters.filesystem import read_documents, read_sources
from rag_core.chunking import Chunker
from rag_core.errors import InvalidInput

FIXTURES = Path(__file__).parent.parent / "fixtures" / "docs"


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_reads_a_docusaurus_folder() -> None:
    documents = read_documents(FIXTURES)
    assert [(d.id, d.route, d.title) for d in documents] == [
        ("docs/01-basics/02-nodes.mdx", "/docs/basics/ros-nodes", "Nodes"),
        ("docs/01-basics/index.md", "/docs/basics", "Basics"),
        ("docs/guides/setup.md", "/docs/getting-started", "Setup"),
        ("docs/intro.md", "/docs/intro", "Welcome: the course"),
        ("docs/notes.txt", "/docs/notes", "Release notes"),
    ]
    nodes, basics, setup, intro, _ = documents
    assert nodes.metadata["keywords"] == ("node", "rclpy")
    assert "@theme/Tabs" not in nodes.text and "editor's note" not in nodes.text
    assert "import rclpy\n# not a heading" in nodes.text
    assert basics.metadata["description"] == "The basics of the course, in one place."
    assert "TODO" not in setup.text
    assert intro.metadata["tags"] == ("robots", "ros2")


def test_fixture_chunks_keep_code_and_tables_whole() -> None:
    [nodes] = [d for d in read_documents(FIXTURES) if d.id.endswith("02-nodes.mdx")]
    chunks = Chunker(max_chars=120, overlap_chars=40).split(nodes)
    code = [c for c in chunks if "rclpy.init()" in c.text]
    rows = [c for c in chunks if "ros2 node list" in c.text]
    assert len(code) == 1 and code[0].text.count("```") == 2
    assert len(rows) == 1 and "| Command | Purpose |" in rows[0].text
    assert {c.heading_path for c in chunks} == {("Nodes",)}
    assert {c.section for c in chunks} == {"docs/01-basics"}


def test_a_single_file_is_its_own_id(tmp_path: Path) -> None:
    write(tmp_path / "README.md", "# Read me\n\nHello.")
    [document] = read_documents(tmp_path / "README.md")
    assert (document.id, document.route, document.title) == ("README.md", "/README", "Read me")


def test_skips_hidden_vendored_and_unsupported_files(tmp_path: Path) -> None:
    root = tmp_path / "site"
    for name in [
        "keep.md",
        "keep.markdown",
        "nested/deeper/keep.MDX",
        ".hidden.md",
        ".git/notes.md",
        "node_modules/pkg/readme.md",
        "__pycache__/x.md",
        "nested/.drafts/secret.md",
        "image.png",
        "script.py",
    ]:
        write(root / name, "text")
    ids = [d.id for d in read_documents(root)]
    assert ids == ["site/keep.markdown", "site/keep.md", "site/nested/deeper/keep.MDX"]


def test_skips_files_over_the_size_limit_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "docs" / "small.md", "small")
    write(tmp_path / "docs" / "big.md", "x" * 101)
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        documents = read_documents(tmp_path / "docs", max_bytes=100)
    assert [d.id for d in documents] == ["docs/small.md"]
    assert "docs/big.md" in caplog.text and "100" in caplog.text


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "latin.md", b"caf\xe9 au lait")
    [document] = read_documents(tmp_path / "docs")
    assert document.text == "caf\ufffd au lait"


def test_missing_root_and_unsupported_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_documents(tmp_path / "missing")
    write(tmp_path / "notes.rst", "text")
    with pytest.raises(InvalidInput, match=r"\.md"):
        read_documents(tmp_path / "notes.rst")


def test_an_empty_folder_has_no_documents(tmp_path: Path) -> None:
    assert read_documents(tmp_path) == []


def test_sources_are_the_raw_texts_behind_the_documents(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "b.md", "---\ntitle: B\n---\nBody b.")
    write(tmp_path / "docs" / "a.txt", "Body a.")
    assert read_sources(tmp_path / "docs") == [
        ("docs/a.txt", "Body a."),
        ("docs/b.md", "---\ntitle: B\n---\nBody b."),
    ]
    assert [d.title for d in read_documents(tmp_path / "docs")] == ["A", "B"]
