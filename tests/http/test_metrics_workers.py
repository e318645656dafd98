"""/metrics with several worker processes (prometheus_client's multiprocess mode).

PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported, so the
workers are subprocesses (metrics_worker.py: the app over the in-memory container, as a
worker of ``serve`` builds it); this process only reads their scrapes, and plays the
supervisor in another subprocess when a worker exits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.http import worker_metrics
from entrypoints.http.metrics import Metrics
from service_process import clean_env

WORKER = Path(__file__).with_name("metrics_worker.py")
PUBLISH_SECONDS = 0.2
"""The workers' HEALTH_INTERVAL: how often each one publishes its gauges."""
ROOT = {"route": "/", "method": "GET", "status": "200"}
Labels = dict[str, str]


def samples(text: str, name: str) -> Iterator[tuple[Labels, float]]:
    """The samples named ``name`` (as in test_metrics.py)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def value(text: str, name: str, **labels: str) -> float | None:
    found = [v for found, v in samples(text, name) if labels.items() <= found.items()]
    assert len(found) <= 1, found
    return found[0] if found else None


class Worker:
    """One worker-like process, driven over its stdin and stdout."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(PUBLISH_SECONDS)],
            env=clean_env(PROMETHEUS_MULTIPROC_DIR=str(directory)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        """Its pid, once it has started (waits for it)."""
        if self._pid is None:
            self._pid = int(self._read()["pid"])
        return self._pid

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.pid and self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def get(self, path: str) -> int:
        status: int = self.ask(get=path)["status"]
        return status

    def scrape(self) -> str:
        answer = self.ask(get="/metrics")
        assert answer["status"] == 200
        text: str = answer["text"]
        return text

    def stop(self) -> None:
        """Close its stdin: it leaves its lifespan and exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0

    def close(self) -> None:
        """Make sure it is gone (after a failed test too)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the worker exited with {self.process.wait(timeout=30)}"
        answer: dict[str, Any] = json.loads(line)
        return answer


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    directory = tmp_path / "metrics"
    directory.mkdir()
    pair = Worker(directory), Worker(directory)  # both start at once
    try:
        assert pair[0].pid != pair[1].pid
        yield pair
    finally:
        for worker in pair:
            worker.close()


def supervisor_reports_exit(directory: Path, pid: int) -> None:
    """What the supervisor does when a worker exits, in a process of its own."""
    code = f"from entrypoints.http.worker_metrics import worker_exited; worker_exited({pid})"
    subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(PROMETHEUS_MULTIPROC_DIR=str(directory)),
        check=True,
        timeout=60,
    )


def eventually(scrape: Callable[[], str], holds: Callable[[str], bool]) -> str:
    """The first scrape for which ``holds`` is true, within 20 publishing periods."""
    deadline = time.monotonic() + 20 * PUBLISH_SECONDS + 10
    while True:
        text = scrape()
        if holds(text) or time.monotonic() > deadline:
            return text
        time.sleep(PUBLISH_SECONDS / 2)


def pids(text: str, name: str) -> set[str]:
    return {labels["pid"] for labels, _ in samples(text, name) if "pid" in labels}


def test_a_scrape_of_either_worker_sums_both(workers: tuple[Worker, Worker]) -> None:
    one, two = workers
    for worker, requests in ((one, 2), (two, 3)):
        for _ in range(requests):
            assert worker.get("/") == 200
        chat = worker.ask(post="/chat", json={"query": "What is a topic?"})
        assert chat["status"] == 200, chat
        assert worker.get("/no/such/page") == 404
    for text in (one.scrape(), two.scrape()):
        assert value(text, "rag_http_requests_total", **ROOT) == 5.0
        assert value(text, "rag_http_request_duration_seconds_count", **ROOT) == 5.0
        assert value(text, "rag_http_request_duration_seconds_bucket", le="+Inf", **ROOT) == 5.0
        assert value(text, "rag_http_requests_total", route="unmatched", status="404") == 2.0
        answers = sum(v for _, v in samples(text, "rag_answers_total"))
        assert answers == 2.0
        index_calls = value(
            text, "rag_upstream_call_duration_seconds_count", dependency="qdrant", outcome="ok"
        )
        assert index_calls is not None and index_calls >= 2.0
        # No sample says which worker answered, except the per-worker gauges.
        assert not pids(text, "rag_http_requests_total")
    # The second scrape counted the first.
    assert value(two.scrape(), "rag_http_requests_total", route="/metrics") == 2.0


def test_gauges_are_published_per_worker_and_leave_with_it(
    workers: tuple[Worker, Worker],
) -> None:
    one, two = workers
    both = {str(one.pid), str(two.pid)}
    text = one.scrape()
    # Each worker's breakers, with its pid (liveall), published at its start.
    assert pids(text, "rag_circuit_state") == both
    for worker in (one, two):
        closed = {"dependency": "qdrant", "state": "closed", "pid": str(worker.pid)}
        assert value(text, "rag_circuit_state", **closed) == 1.0
    assert pids(text, "rag_process_resident_memory_bytes") == both
    cpu = value(text, "rag_process_cpu_seconds_total")  # summed: no pid
    assert cpu is not None and cpu > 0
    assert value(text, "rag_streams_in_flight") == 0.0  # summed over live workers

    # A circuit opens in one worker: the other's scrape shows it within a period.
    assert one.ask(trip="qdrant") == {}
    opened = {"dependency": "qdrant", "state": "open", "pid": str(one.pid)}
    text = eventually(two.scrape, lambda t: value(t, "rag_circuit_state", **opened) == 1.0)
    assert value(text, "rag_circuit_state", **opened) == 1.0
    still = {"dependency": "qdrant", "state": "closed", "pid": str(two.pid)}
    assert value(text, "rag_circuit_state", **still) == 1.0

    # Outbox entries pending are summed over the workers (livesum).
    one.ask(pending=2)
    two.ask(pending=3)
    text = eventually(one.scrape, lambda t: value(t, "rag_outbox_pending") == 5.0)
    assert value(text, "rag_outbox_pending") == 5.0

    # Worker one exits: until the supervisor says so, its gauges stay; then they leave.
    assert one.get("/") == 200
    one.stop()
    assert str(one.pid) in pids(two.scrape(), "rag_circuit_state")
    supervisor_reports_exit(one.directory, one.pid)
    text = two.scrape()
    for name in ("rag_circuit_state", "rag_process_resident_memory_bytes"):
        assert pids(text, name) == {str(two.pid)}, name
    assert value(text, "rag_outbox_pending") == 3.0
    assert value(text, "rag_http_requests_total", **ROOT) == 1.0  # its counts stay


def test_a_directory_set_after_prometheus_client_was_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process imported prometheus_client without the variable: it is one process.
    monkeypatch.setenv(worker_metrics.ENVIRONMENT_VARIABLE, str(tmp_path))
    with pytest.raises(RuntimeError, match="set after prometheus_client was imported"):
        Metrics()


def test_worker_exited_without_a_directory_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(worker_metrics.ENVIRONMENT_VARIABLE, raising=False)
    worker_metrics.worker_exited(12345)
    assert worker_metrics.shared_directory() is None
