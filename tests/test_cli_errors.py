"""Issue 14, item 10: the command line's failures are one clear line on stderr and an
exit code (2: bad input, 1: a failure), never a traceback: an unsupported file, a
service that drops the hand-over, an index that does not match at start-up."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints import cli
from rag_core.errors import DependencyUnavailable, IndexMismatch, InvalidInput
from service_process import clean_env, free_port

MISMATCH = "collection 'documentation' was laid out for 384 dimensions, not 1536"


def error_lines(stderr: str) -> list[str]:
    """The lines that are not log records (those start with a timestamp)."""
    return [line for line in stderr.splitlines() if line and not line[:4].isdigit()]


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=clean_env(DATA_DIR=str(cwd / "data"), **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nThe kitten naps on the sofa.\n")
    (tmp_path / "Makefile").write_text("all:\n\techo hi\n")
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ["OPENAI_API_KEY", "QDRANT_URL", "DATABASE_URL", "NEON_API_KEY", "DOCS_PATH"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


def test_ingest_of_an_unsupported_file_is_one_line_and_exit_2(tmp_path: Path, docs: Path) -> None:
    result = run("-m", "entrypoints.cli", "ingest", "Makefile", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert "Makefile" in line and ".md" in line


@pytest.mark.usefixtures("env")
def test_an_unsupported_file_among_the_paths_stops_before_any_work(
    tmp_path: Path, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ingest", str(docs), "Makefile"]) == 2
    assert "Makefile" in capsys.readouterr().err
    assert cli.main(["ingest", str(docs)]) == 0
    assert "documents added: 1" in capsys.readouterr().out  # nothing was ingested before


@pytest.mark.usefixtures("env")
def test_a_special_file_given_to_ingest_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.md")
    assert cli.main(["ingest", "pipe.md"]) == 2
    assert "not a regular file" in capsys.readouterr().err


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """A TCP server that accepts each connection and closes it at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.mark.usefixtures("env")
def test_a_hand_over_without_an_admin_key_is_one_line_and_exit_2(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["ingest", str(docs), "--url", url]) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "ADMIN_API_KEY" in line


@pytest.mark.usefixtures("env")
def test_a_hand_over_the_server_drops_is_one_line_and_exit_1(
    docs: Path,
    dropping_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "a-key-for-the-remote-service")
    assert cli.main(["ingest", str(docs), "--url", dropping_server]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert dropping_server in line


@pytest.mark.usefixtures("env")
def test_a_hand_over_to_nobody_is_one_line_and_exit_1(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["ask", "what naps?", "--url", url]) == 1
    [line] = error_lines(capsys.readouterr().err)
    assert url in line


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IndexMismatch(MISMATCH), 1),
        (DependencyUnavailable("qdrant", "refused"), 1),
        (InvalidInput("a bad setting\nover two lines"), 2),
    ],
)
def test_a_failure_building_the_container_is_one_line(
    docs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    code: int,
) -> None:
    async def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(cli, "build_container", fail)
    for command in (["ingest", str(docs)], ["ask", "what naps?"], ["reindex"]):
        assert cli.main(command) == code
        [line] = error_lines(capsys.readouterr().err)
        assert " ".join(str(error).split()) in line


@pytest.mark.usefixtures("env")
def test_the_line_masks_secrets(
    docs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fail(*args: object, **kwargs: object) -> None:
        raise DependencyUnavailable("database", "postgresql://ada:hunter2-pw@db.example/x down")

    monkeypatch.setattr(cli, "build_container", fail)
    assert cli.main(["ask", "what naps?"]) == 1
    [line] = error_lines(capsys.readouterr().err)
    assert "hunter2" not in line and "db.example" in line


SERVE_WITH_A_MISMATCH = f"""
import sys
import entrypoints.http.app as app
from rag_core.errors import IndexMismatch

async def fail(*args, **kwargs):
    raise IndexMismatch({MISMATCH!r})

app.build_container = fail
from entrypoints.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_index_mismatch_at_serve_start_up_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = str(free_port())
    result = run("-c", SERVE_WITH_A_MISMATCH, "serve", "--port", port, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert MISMATCH in line


def test_an_unsupported_docs_path_at_serve_start_up_is_one_line_and_exit_2(
    tmp_path: Path, docs: Path
) -> None:
    port = str(free_port())
    result = run("-m", "entrypoints.cli", "serve", cwd=tmp_path, PORT=port, DOCS_PATH="Makefile")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert "Makefile" in line
