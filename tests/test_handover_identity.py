"""Issue 14, item 8: the CLI hands its work only to the service that holds this
DATA_DIR. That service publishes its address and a per-run nonce in
DATA_DIR/service.json when it has started (the index lock held); the CLI asks the
address for HMAC(nonce, a fresh challenge) and sends nothing (no documents, no admin
key) unless the proof holds."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.settings import Settings
from entrypoints import instance
from service_process import clean_env, cli, free_port, running_service


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with plausible JSON and records what it was sent."""

    seen: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.startswith("/internal/instance"):
            payload: dict[str, Any] = {"proof": "0" * 64}
        elif self.path == "/chat":
            payload = {
                "response": "from the impostor",
                "sources": [],
                "mode": "x",
                "retrieval": "x",
            }
        else:
            payload = {"documents_added": 99}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


# --- the published record and the proof -------------------------------------------


def test_the_record_is_private_and_removed_only_by_its_owner(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", host="0.0.0.0", port=9123)
    record = instance.publish(settings)
    path = tmp_path / "data" / instance.RECORD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["url"] == "http://127.0.0.1:9123" and stored["nonce"] == record.nonce
    assert len(record.nonce) >= 32
    other = instance.publish(settings)  # a later run took over the folder
    instance.withdraw(settings, record)
    assert json.loads(path.read_text())["nonce"] == other.nonce
    instance.withdraw(settings, other)
    assert not path.exists()


def test_each_run_has_its_own_nonce(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert instance.publish(settings).nonce != instance.publish(settings).nonce


async def test_the_route_proves_the_nonce_without_revealing_it(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    app = FastAPI()
    instance.install(app, settings)
    async with app.router.lifespan_context(app):
        record = instance.read(settings)
        assert record is not None and record.pid == os.getpid()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            challenge = "ab" * 16
            answer = await client.get("/internal/instance", params={"challenge": challenge})
            assert answer.status_code == 200
            expected = hmac.new(record.nonce.encode(), challenge.encode(), hashlib.sha256)
            assert answer.json() == {"proof": expected.hexdigest()}
            assert record.nonce not in answer.text
            for bad in ["", "short", "x" * 300]:
                refused = await client.get("/internal/instance", params={"challenge": bad})
                assert refused.status_code == 422
    assert instance.read(settings) is None  # withdrawn at shutdown


async def test_a_data_dir_it_cannot_write_does_not_stop_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a folder")
    settings = Settings(_env_file=None, data_dir=tmp_path / "file")
    app = FastAPI()
    instance.install(app, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.get("/internal/instance", params={"challenge": "ab" * 16})
            assert answer.json() == {"proof": ""}  # nothing can be proven
    assert "cannot publish" in caplog.text


# --- the CLI, against the real service --------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe kitten naps on the sofa.\n")
    return tmp_path


def test_the_cli_hands_over_to_the_service_of_its_data_dir_not_to_its_port(
    workdir: Path, impostor: tuple[int, list[dict[str, Any]]]
) -> None:
    port, seen = impostor
    env = clean_env(PORT=str(free_port()), DATA_DIR=str(workdir / "data"))
    with running_service(env, workdir, "--ingest", "docs"):
        # The CLI's PORT names the impostor; the service of this DATA_DIR is elsewhere.
        cli_env = {**env, "PORT": str(port)}
        ingested = cli("ingest", "docs", env=cli_env, cwd=workdir)
        assert ingested.returncode == 0, ingested.stderr
        assert "documents unchanged: 1" in ingested.stdout
        assert f"127.0.0.1:{env['PORT']}" in ingested.stderr  # says where it went
        asked = cli("ask", "Where does the kitten nap?", env=cli_env, cwd=workdir)
        assert asked.returncode == 0, asked.stderr
        assert "impostor" not in asked.stdout and "sofa" in asked.stdout
    assert seen == []


def test_the_cli_sends_nothing_to_a_service_that_cannot_prove_the_nonce(
    workdir: Path, impostor: tuple[int, list[dict[str, Any]]]
) -> None:
    port, seen = impostor
    env = clean_env(PORT=str(free_port()), DATA_DIR=str(workdir / "data"))
    with running_service(env, workdir, "--ingest", "docs"):
        # A record that names another address (stale, or planted): the proof fails.
        record = workdir / "data" / instance.RECORD
        real = record.read_text()
        record.write_text(json.dumps({**json.loads(real), "url": f"http://127.0.0.1:{port}"}))
        key = (workdir / "data" / "admin-key").read_text().strip()
        try:
            ingested = cli("ingest", "docs", env=env, cwd=workdir)
            asked = cli("ask", "Where does the kitten nap?", env=env, cwd=workdir)
        finally:
            record.write_text(real)
    for result in (ingested, asked):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "nothing was sent" in result.stderr
    assert [(r["method"], r["path"].split("?")[0]) for r in seen] == [
        ("GET", "/internal/instance"),
        ("GET", "/internal/instance"),
    ]
    assert all(key not in json.dumps(r, default=str) for r in seen)


def test_no_record_means_no_hand_over(workdir: Path) -> None:
    env = clean_env(PORT=str(free_port()), DATA_DIR=str(workdir / "data"))
    with running_service(env, workdir, "--ingest", "docs"):
        record = workdir / "data" / instance.RECORD
        real = record.read_text()
        record.unlink()
        try:
            ingested = cli("ingest", "docs", env=env, cwd=workdir)
        finally:
            record.write_text(real)
    assert ingested.returncode == 1
    assert "Traceback" not in ingested.stderr and instance.RECORD in ingested.stderr
