"""Runs the VectorIndex contract against every adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.memory.index import InMemoryIndex
from adapters.qdrant_index import QdrantIndex
from adapters.testing.contracts.vector_index import VectorIndexContract
from fakes.qdrant_server import FakeQdrantServer
from qdrant_local import open_local
from rag_core.ports import VectorIndex


class TestInMemoryIndex(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return InMemoryIndex()


class TestQdrantMemory(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return QdrantIndex.memory("docs")


class TestQdrantLocal(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return open_local(tmp_path / "qdrant", "docs")


class TestQdrantEdge(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        from adapters.qdrant_edge import EdgeIndex

        return EdgeIndex.open(tmp_path / "edge", "docs")


class TestRemoteIndex(VectorIndexContract):
    """RemoteIndex over a real Unix socket, authenticated, to an owner serving a Qdrant
    Edge index (in the test's loop; as a process of its own in test_index_owner_process.py)."""

    @pytest.fixture(autouse=True)
    async def owner(self, tmp_path: Path) -> AsyncIterator[None]:
        from adapters.index_owner import serve_index
        from adapters.qdrant_edge import EdgeIndex

        edge = EdgeIndex.open(tmp_path / "edge", "docs")
        self._socket = tmp_path / "owner.sock"
        ready = asyncio.Event()
        serving = asyncio.create_task(serve_index(edge, self._socket, ready=ready.set))
        await asyncio.wait_for(ready.wait(), 5)
        yield
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await edge.close()

    async def make_index(self, tmp_path: Path) -> VectorIndex:
        from adapters.index_owner import RemoteIndex

        return RemoteIndex(self._socket, timeout=10)


class TestQdrantServer(VectorIndexContract):
    """The REST adapter over real HTTP, against the tests' fake Qdrant server (which
    other tests put behind a fault proxy): passing the contract is what makes it a
    trustworthy stand-in for a server."""

    @pytest.fixture(autouse=True)
    def server(self) -> Iterator[FakeQdrantServer]:
        with FakeQdrantServer() as server:
            self._server = server
            yield server

    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return QdrantIndex.remote(self._server.url, None, "docs", timeout=5.0)
