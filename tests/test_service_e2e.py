"""The real service under uvicorn on loopback, started by the real command line,
with the embedded defaults (Qdrant local mode, SQLite) in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service_process import clean_env, cli, free_port, running_service

FIXTURES = Path(__file__).parent / "fixtures" / "docs"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "docs")
    return tmp_path


@pytest.fixture
def service(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = clean_env(PORT=str(free_port()), DATA_DIR=str(workdir / "data"))
    with running_service(env, workdir, "--ingest", "docs") as base:
        yield base, env


def test_serves_cited_answers_and_cli_ingest_hands_over_to_it(
    service: tuple[str, dict[str, str]], workdir: Path
) -> None:
    base, env = service
    answer = httpx.post(
        f"{base}/chat", json={"query": "How do nodes talk to each other?"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sources"] and all(s["url"].startswith("/docs") for s in body["sources"])

    # The service holds the local index; the CLI hands the work to it.
    again = cli("ingest", "docs", env=env, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "handing the work to it" in again.stderr
    assert "chunks written: 0" in again.stdout and "documents unchanged: 5" in again.stdout

    # With --url the CLI never touches a local index: here its own DATA_DIR is empty.
    remote_env = {
        **env,
        "DATA_DIR": str(workdir / "elsewhere"),
        "ADMIN_API_KEY": (workdir / "data" / "admin-key").read_text(),
    }
    remote = cli("ingest", "docs", "--url", base, env=remote_env, cwd=workdir)
    assert "documents unchanged: 5" in remote.stdout, remote.stdout + remote.stderr
    assert not (workdir / "elsewhere" / "qdrant-edge").exists()

    intro = workdir / "docs" / "intro.md"
    intro.write_text(
        intro.read_text() + "\n## Lidar\n\nA lidar measures distance with laser pulses.\n"
    )
    changed = cli("ingest", "docs", env=env, cwd=workdir)
    assert "documents changed: 1" in changed.stdout and "documents unchanged: 4" in changed.stdout

    lidar = httpx.post(
        f"{base}/chat", json={"query": "What does a lidar measure?"}, timeout=10
    ).json()
    assert lidar["sources"][0]["url"] == "/docs/intro"

    intro.unlink()
    removed = cli("ingest", "docs", env=env, cwd=workdir)
    assert "documents removed: 1" in removed.stdout
    gone = httpx.post(
        f"{base}/chat", json={"query": "What does a lidar measure?"}, timeout=10
    ).json()
    assert all(s["url"] != "/docs/intro" for s in gone["sources"])


def test_cli_ingest_and_ask_without_a_service(workdir: Path) -> None:
    env = clean_env(DATA_DIR=str(workdir / "data"))
    first = cli("ingest", "docs", env=env, cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "documents added: 5" in first.stdout
    second = cli("ingest", "docs", env=env, cwd=workdir)
    assert "chunks written: 0" in second.stdout
    # Another folder also named docs is another source: neither prunes the other.
    other = workdir / "book" / "docs"
    other.mkdir(parents=True)
    (other / "lidar.md").write_text("# Lidar\n\nA lidar measures distance with laser pulses.\n")
    book = cli("ingest", str(other), env=env, cwd=workdir)
    assert "documents added: 1" in book.stdout and "documents removed: 0" in book.stdout
    again = cli("ingest", "docs", env=env, cwd=workdir)
    assert "documents unchanged: 5" in again.stdout and "documents removed: 0" in again.stdout

    asked = cli("ask", "How do nodes talk to each other?", env=env, cwd=workdir)
    assert asked.returncode == 0, asked.stderr
    assert "[1]" in asked.stdout and "/docs" in asked.stdout
