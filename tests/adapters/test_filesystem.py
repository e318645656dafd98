import logging
import os
import socket
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


# --- the ingested root is a boundary (issue 14, item 1) -------------------------------


def test_a_link_out_of_the_root_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    write(tmp_path / "secret.md", "SECRET=1")
    (root / "env.md").symlink_to("/proc/self/environ")
    (root / "passwd.md").symlink_to("/etc/passwd")
    (root / "up.md").symlink_to(tmp_path / "secret.md")
    (root / "rel.txt").symlink_to("../secret.md")
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        sources = read_sources(root)
    assert sources == [("docs/ok.md", "# ok")]
    for name in ["env.md", "passwd.md", "up.md", "rel.txt"]:
        assert f"docs/{name}" in caplog.text
    assert "outside" in caplog.text


def test_a_linked_folder_out_of_the_root_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    write(tmp_path / "private" / "secret.md", "SECRET=1")
    (root / "private").symlink_to(tmp_path / "private", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert [d for d, _ in read_sources(root)] == ["docs/ok.md"]
    assert "docs/private" in caplog.text and "outside" in caplog.text


def test_links_that_stay_inside_the_root_are_read(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "guide" / "real.md", "# Real")
    (root / "alias.md").symlink_to("guide/real.md")
    (root / "guide" / "same.md").symlink_to(root / "guide" / "real.md")
    assert read_sources(root) == [
        ("docs/alias.md", "# Real"),
        ("docs/guide/real.md", "# Real"),
        ("docs/guide/same.md", "# Real"),
    ]


def test_a_link_into_a_hidden_folder_of_the_root_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A repository's .git/config can hold a token in a remote's URL.
    root = tmp_path / "repo"
    write(root / "ok.md", "# ok")
    write(root / ".git" / "config", "url = https://user:token@example.com/x.git")
    (root / "config.md").symlink_to(".git/config")
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert [d for d, _ in read_sources(root)] == ["repo/ok.md"]
    assert "repo/config.md" in caplog.text


def test_a_broken_link_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    (root / "gone.md").symlink_to("missing.md")
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert [d for d, _ in read_sources(root)] == ["docs/ok.md"]
    assert "docs/gone.md" in caplog.text


@pytest.mark.timeout(10)
def test_special_files_are_never_opened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    os.mkfifo(root / "pipe.md")  # opening it for reading would block
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(root / "sock.md"))
    (root / "null.md").symlink_to("/dev/null")
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
            assert [d for d, _ in read_sources(root)] == ["docs/ok.md"]
    finally:
        listening.close()
    assert "docs/pipe.md" in caplog.text and "not a regular file" in caplog.text
    assert "docs/sock.md" in caplog.text and "docs/null.md" in caplog.text


@pytest.mark.timeout(10)
def test_a_special_file_given_as_the_root_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_sources(tmp_path / "pipe.md")


def test_a_linked_root_is_resolved_once_and_is_the_boundary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "site" / "docs"
    write(real / "ok.md", "# ok")
    write(tmp_path / "site" / "private.md", "SECRET=1")
    (real / "up.md").symlink_to("../private.md")
    link = tmp_path / "docs"
    link.symlink_to(real, target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert read_sources(link) == [("docs/ok.md", "# ok")]
    assert "docs/up.md" in caplog.text


def test_a_linked_single_file_is_read(tmp_path: Path) -> None:
    write(tmp_path / "real.md", "# Real")
    (tmp_path / "link.md").symlink_to(tmp_path / "real.md")
    assert read_sources(tmp_path / "link.md") == [("link.md", "# Real")]


def test_a_link_to_a_file_that_is_not_ingested_itself_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    write(root / "settings.yaml", "token: abc")
    (root / "settings.md").symlink_to("settings.yaml")
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert [d for d, _ in read_sources(root)] == ["docs/ok.md"]
    assert "docs/settings.md" in caplog.text


def test_a_link_loop_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    write(root / "ok.md", "# ok")
    (root / "a.md").symlink_to("b.md")
    (root / "b.md").symlink_to("a.md")
    with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
        assert [d for d, _ in read_sources(root)] == ["docs/ok.md"]
    assert "docs/a.md" in caplog.text and "docs/b.md" in caplog.text
