"""The real service under uvicorn on loopback, started by the real command line,
with the embedded defaults (Qdrant local mode, SQLite) in a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "docs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "OPENAI",
                "QDRANT",
                "NEON",
                "DATABASE",
                "BETTER_AUTH",
                "SPACE",
                "APP_ENV",
                "ADMIN",
                "DOCS_PATH",
                "PORT",
            )
        )
    }
    return {**keep, **extra}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "docs")
    return tmp_path


@pytest.fixture
def service(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = clean_env(PORT=str(port), DATA_DIR=str(workdir / "data"))
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--ingest", "docs"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.1)
        else:
            pytest.fail("service did not become ready in 30 s")
        yield base, env
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        # uvicorn re-raises SIGTERM after a graceful shutdown, so -15 is a clean exit here.
        assert process.returncode in (0, -15), output
        assert "Application shutdown complete" in output


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
    asked = cli("ask", "How do nodes talk to each other?", env=env, cwd=workdir)
    assert asked.returncode == 0, asked.stderr
    assert "[1]" in asked.stdout and "/docs" in asked.stdout
