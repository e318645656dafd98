"""The index owner as `rag-backend serve` runs it: a process of its own
(entrypoints.index_owner.run) holding DATA_DIR's Qdrant Edge index, shared by client
processes; and the composition hook that makes the workers' `edge` a RemoteIndex."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.index_owner import RemoteIndex, key_path
from adapters.settings import Settings
from adapters.testing.contracts.vector_index import chunk_id, indexed, query
from entrypoints import index_owner
from entrypoints.composition import VECTOR_INDEXES, Scope, choices
from rag_core.errors import DependencyUnavailable
from service_process import clean_env

OWNER = """
import sys
from pathlib import Path
from adapters.settings import Settings
from entrypoints.index_owner import run
run(Settings(), Path(sys.argv[1]))
"""

CLIENT = """
import asyncio, json, sys
from pathlib import Path
from adapters.index_owner import RemoteIndex
from adapters.testing.contracts.vector_index import indexed, query

async def main() -> None:
    index = RemoteIndex(Path(sys.argv[1]), timeout=10)
    before = await index.count()
    hits = await asyncio.gather(*(index.search(query({1: 1.0})) for _ in range(20)))
    await index.upsert([indexed("from the other process", {2: 1.0})])
    print(json.dumps({"before": before, "hits": [len(h) for h in hits]}))
    await index.close()

asyncio.run(main())
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """An owner process of a fresh DATA_DIR, listening; stopped with SIGKILL if the
    test left it running."""
    socket = tmp_path / "owner.sock"
    env = clean_env(DATA_DIR=str(tmp_path / "data"), VECTOR_INDEX="edge")
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(socket)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not socket.exists():  # renamed into place once it listens
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the owner did not start: {process.communicate()[0]}")
        time.sleep(0.02)
    yield process, socket
    if process.poll() is None:
        process.kill()
    process.communicate()


async def test_two_client_processes_share_one_owner_which_stops_cleanly(
    owner: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    process, socket = owner
    here = RemoteIndex(socket, timeout=10)
    await here.prepare(None)
    await here.upsert([indexed("from the test", {1: 1.0})])
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(socket),
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
    )
    talking = asyncio.create_task(asyncio.wait_for(other.communicate(), 60))
    found = await asyncio.gather(*(here.search(query({1: 1.0})) for _ in range(20)))  # meanwhile
    output, _ = await talking
    assert other.returncode == 0
    assert json.loads(output) == {"before": 1, "hits": [1] * 20}
    assert all([p.chunk.id for p in hits] == [chunk_id("from the test")] for hits in found)
    assert await here.count() == 2  # the other process's upsert
    await here.close()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, process.communicate()[0]
    assert not socket.exists() and not key_path(socket).exists()
    # The folder is flushed and released: another process may open it now.
    from adapters.qdrant_edge import EdgeIndex

    edge = EdgeIndex.open(tmp_path / "data" / "qdrant-edge", "documentation")
    assert await edge.count() == 2
    await edge.close()


async def test_an_owner_that_hangs_or_dies_is_unavailable_within_the_timeout(
    owner: tuple[subprocess.Popen[str], Path],
) -> None:
    process, socket = owner
    patient = RemoteIndex(socket, timeout=30)
    await patient.prepare(None)  # creates the shard: longer than the timeout below
    await patient.close()
    index = RemoteIndex(socket, timeout=0.5)
    os.kill(process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable, match="no answer to count") as hung:
            await index.count()
        assert time.monotonic() - started < 2
        assert hung.value.dependency == "qdrant"
    finally:
        os.kill(process.pid, signal.SIGCONT)
    assert await index.count() == 0  # back
    process.kill()
    process.wait(timeout=10)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        await index.count()
    with pytest.raises(DependencyUnavailable, match="cannot connect"):
        await index.count()  # the next call tries a new connection: nobody listens
    assert time.monotonic() - started < 2
    await index.close()


def test_a_second_owner_of_the_folder_is_refused(
    owner: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    env = clean_env(DATA_DIR=str(tmp_path / "data"), VECTOR_INDEX="edge")
    second = subprocess.run(
        [sys.executable, "-c", OWNER, str(tmp_path / "second.sock")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "IndexLocked" in second.stderr


def test_a_spawned_owner_signals_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    """As a supervisor starts it: multiprocessing spawn, an Event's set as ``ready``."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    socket = tmp_path / "index.sock"
    settings = Settings(data_dir=tmp_path / "data", vector_index="edge")
    process = context.Process(
        target=index_owner.run, args=(settings, socket), kwargs={"ready": ready.set}
    )
    process.start()
    try:
        assert ready.wait(30)
        assert socket.is_socket()

        async def count() -> int:
            index = RemoteIndex(socket, timeout=10)
            await index.prepare(None)
            try:
                return await index.count()
            finally:
                await index.close()

        assert asyncio.run(count()) == 0
        os.kill(process.pid or 0, signal.SIGTERM)
        process.join(20)
        assert process.exitcode == 0
        assert not socket.exists()
    finally:
        if process.is_alive():
            process.kill()
            process.join()


async def test_the_edge_factory_gives_a_remote_index_when_the_socket_is_set(
    tmp_path: Path,
) -> None:
    socket = tmp_path / "owner.sock"
    settings = Settings(data_dir=tmp_path, vector_index="edge", index_owner_socket=socket)
    scope = Scope(settings)
    built = await VECTOR_INDEXES["edge"].build(scope)
    assert isinstance(built.index, RemoteIndex) and built.index.path == socket
    assert built.after_deletes == built.index.after_deletes
    assert built.target == f"index owner at {socket}"
    assert not (tmp_path / "qdrant-edge").exists()  # nothing opened here
    assert str(socket) in choices(settings).described(settings)["vector_index"]
    for close in scope.closers:
        await close()


def test_index_owner_socket_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INDEX_OWNER_SOCKET", str(tmp_path / "owner.sock"))
    assert Settings().index_owner_socket == tmp_path / "owner.sock"
    monkeypatch.delenv("INDEX_OWNER_SOCKET")
    assert Settings().index_owner_socket is None
