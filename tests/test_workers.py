"""`rag-backend serve` with several worker processes (entrypoints.workers): the real
service against the fake Qdrant server (the production topology's index), on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.settings import Settings
from entrypoints import instance
from entrypoints.workers import worker_count
from fakes.openai_server import FakeOpenAI
from fakes.qdrant_server import FakeQdrantServer
from service_process import clean_env, free_port

FIXTURES = Path(__file__).parent / "fixtures" / "docs"


def test_workers_default_to_the_cpus_the_container_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("entrypoints.workers.usable_cpus", lambda: 3)
    remote = {"_env_file": None, "qdrant_url": "http://qdrant:6333"}
    assert worker_count(Settings(**remote)) == 3  # type: ignore[arg-type]
    assert worker_count(Settings(**remote, workers=2)) == 2  # type: ignore[arg-type]


def test_in_memory_adapters_serve_with_one_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("entrypoints.workers.usable_cpus", lambda: 4)
    assert worker_count(Settings(_env_file=None, vector_index="memory")) == 1
    assert not caplog.records  # nobody asked for more: nothing to warn about
    assert worker_count(Settings(_env_file=None, database="memory", workers=4)) == 1
    assert "serving with 1" in caplog.text


def test_the_embedded_index_serves_with_one_process_unless_workers_says_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("entrypoints.workers.usable_cpus", lambda: 4)
    assert worker_count(Settings(_env_file=None)) == 1  # edge, the default
    assert worker_count(Settings(_env_file=None, workers=3)) == 3  # then it has an owner


def test_workers_environment_variables() -> None:
    assert Settings(_env_file=None, WEB_CONCURRENCY="3").workers == 3  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="WORKERS"):
        Settings(_env_file=None, WORKERS="0")  # type: ignore[call-arg]


@pytest.fixture
def qdrant() -> Iterator[FakeQdrantServer]:
    with FakeQdrantServer() as server:
        yield server


def _env(tmp_path: Path, qdrant: FakeQdrantServer, **extra: str) -> dict[str, str]:
    return clean_env(
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
        QDRANT_URL=qdrant.url,
        DOCS_PATH=str(FIXTURES),
        WORKERS="2",
        **extra,
    )


class Served:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.data_dir = Path(env["DATA_DIR"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def wait_ready(self, seconds: float = 40) -> None:
        """Until /health/ready answers and every worker has started (the service record)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"service exited: {self.stop()}")
            try:
                ready = httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200
                if ready and (self.data_dir / instance.RECORD).exists():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"not ready in {seconds} s: {self.stop()}")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        # multiprocessing's resource tracker is a child too; workers run spawn_main.
        return [pid for pid in pids if b"spawn_main" in _cmdline(pid)]

    def stop(self, timeout: float = 40) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate()
        return self.output


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _connections(pid: int, port: int) -> int:
    """How many established TCP connections to local ``port`` process ``pid`` holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            held += link.startswith("socket:[") and link[8:-1] in inodes
    return held


def _holds(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` has a file open under ``folder``."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(link.startswith(str(folder)) for link in links)


@pytest.fixture
def served(tmp_path: Path, qdrant: FakeQdrantServer) -> Iterator[Served]:
    service = Served(_env(tmp_path, qdrant), tmp_path)
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


def test_two_workers_serve_one_port_ingest_once_and_stop_cleanly(
    served: Served, qdrant: FakeQdrantServer, tmp_path: Path
) -> None:
    pids = served.workers()
    assert len(pids) == 2
    # Each worker listens on a socket of its own (SO_REUSEPORT): the kernel spreads a
    # burst of new connections over both (all 24 on one: odds 1 in 8 million).
    port = int(served.base.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=served.base, timeout=10) for _ in range(24)]
    try:
        for client in clients:
            assert client.get("/health/live").status_code == 200  # each keeps its connection
        held = {pid: _connections(pid, port) for pid in pids}
    finally:
        for client in clients:
            client.close()
    assert sum(held.values()) == 24 and all(held.values()), held

    answers = [
        httpx.post(f"{served.base}/chat", json={"query": "What is a topic?"}, timeout=10)
        for _ in range(6)
    ]
    assert all(a.status_code == 200 and a.json()["sources"] for a in answers)
    # Whichever worker is scraped, /metrics counts what both answered.
    for _ in range(4):
        scrape = httpx.get(f"{served.base}/metrics", timeout=10).text
        chats = [
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("rag_http_requests_total{") and 'route="/chat"' in line
        ]
        assert sum(chats) == 6, scrape
        gauge_pids = {
            line.split('pid="', 1)[1].split('"', 1)[0]
            for line in scrape.splitlines()
            if line.startswith("rag_circuit_state{") and 'pid="' in line
        }
        assert gauge_pids == {str(pid) for pid in pids}, scrape  # each worker's own circuits

    # Any worker proves the run's nonce, so the CLI's hand-over finds the service.
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", port=int(served.base.rsplit(":", 1)[1])
    )
    record = instance.read(settings)  # published once every worker has started
    assert record is not None and record.pid == served.process.pid
    for _ in range(8):
        assert instance.verified_service(settings).nonce == record.nonce

    output = served.stop()
    assert served.process.returncode == 0, output
    assert output.count("Application shutdown complete") == 2, output
    assert output.count("ingested ") == 1, output  # DOCS_PATH by the first worker only
    assert instance.read(settings) is None  # withdrawn
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_worker_that_dies_is_replaced_while_the_other_serves(served: Served) -> None:
    first, second = served.workers()
    os.kill(first, signal.SIGKILL)
    while b"spawn_main" in _cmdline(first):  # until it is gone (what it held is lost)
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = served.workers()
        if len(now) == 2 and first not in now:
            break
        assert httpx.get(f"{served.base}/health/live", timeout=5).status_code == 200
        time.sleep(0.1)
    else:
        pytest.fail(f"not replaced: {served.workers()}")
    assert second in served.workers()
    served.wait_ready()
    assert served.stop().count("exited with -9: starting another") == 1


def test_sigterm_lets_every_worker_finish_what_it_is_answering(
    tmp_path: Path, qdrant: FakeQdrantServer
) -> None:
    with FakeOpenAI(dimension=64, first_byte_latency=2.0) as fake:
        env = _env(
            tmp_path,
            qdrant,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_EMBEDDING_DIMENSION="64",
        )
        service = Served(env, tmp_path)
        try:
            service.wait_ready()
            answers: list[httpx.Response] = []

            def ask() -> None:
                answers.append(
                    httpx.post(
                        f"{service.base}/chat", json={"query": "What is a node?"}, timeout=30
                    )
                )

            # More requests than workers, on their own connections: both workers hold some.
            askers = [threading.Thread(target=ask) for _ in range(6)]
            for asker in askers:
                asker.start()
            time.sleep(1.0)  # every request is waiting for the model
            service.process.send_signal(signal.SIGTERM)
            for asker in askers:
                asker.join(30)
            output = service.stop()
        finally:
            service.stop()
    assert [a.status_code for a in answers] == [200] * 6, output
    assert all(a.json()["mode"] == "generated" for a in answers)
    assert service.process.returncode == 0, output


def test_a_port_in_use_is_an_error_before_any_worker_starts(
    tmp_path: Path, qdrant: FakeQdrantServer
) -> None:
    env = _env(tmp_path, qdrant)
    address = ("127.0.0.1", int(env["PORT"]))
    # Another service there, with SO_REUSEPORT or without: the port is not shared with it.
    for reuse_port in (False, True):
        with socket.create_server(address, reuse_port=reuse_port):
            service = Served(env, tmp_path)
            try:
                service.process.wait(20)
            finally:
                output = service.stop()
        assert service.process.returncode == 1, output
        assert f"cannot listen on 127.0.0.1:{env['PORT']}" in output, output
        assert "Traceback" not in output and "worker 0" not in output, output


def test_a_worker_that_cannot_start_stops_the_service_with_its_exit_code(
    tmp_path: Path, qdrant: FakeQdrantServer
) -> None:
    service = Served(_env(tmp_path, qdrant, RATE_LIMIT_CHAT="lots"), tmp_path)
    try:
        service.process.wait(40)
    finally:
        output = service.stop()
    assert service.process.returncode == 2, output
    assert "rate limits" in output and "Traceback" not in output, output


def test_the_embedded_index_is_served_to_every_worker_by_its_owner(tmp_path: Path) -> None:
    env = clean_env(
        PORT=str(free_port()), DATA_DIR=str(tmp_path / "data"), DOCS_PATH=str(FIXTURES), WORKERS="2"
    )
    service = Served(env, tmp_path)
    try:
        service.wait_ready()
        assert len(service.workers()) == 3  # two workers and the index owner
        asked = [
            httpx.post(f"{service.base}/chat", json={"query": "What is a topic?"}, timeout=10)
            for _ in range(4)
        ]
        assert all(a.status_code == 200 and a.json()["sources"] for a in asked)

        # The CLI finds the folder held and hands its ingest to the service.
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "drones.md").write_text("# Drones\n\nA quadrotor hovers with four rotors.\n")
        handed = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "ingest", str(extra)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert handed.returncode == 0 and "handing the work to it" in handed.stderr, handed
        answer = httpx.post(
            f"{service.base}/chat", json={"query": "How does a quadrotor hover?"}, timeout=10
        ).json()
        assert "rotors" in answer["response"], answer

        # An owner that dies is replaced; the workers reconnect to the new one.
        index = tmp_path / "data" / "qdrant-edge"
        (owner,) = [pid for pid in service.workers() if _holds(pid, index)]
        os.kill(owner, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = httpx.post(
                f"{service.base}/chat", json={"query": "What is a topic?"}, timeout=10
            )
            if response.status_code == 200 and response.json()["sources"]:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no answer after the owner died: {response.text}")
        assert owner not in service.workers()
        output = service.stop()
    finally:
        service.stop()
    assert service.process.returncode == 0, output
    assert "index owner (pid" in output and "exited with -9: starting another" in output, output
