"""Runs the VectorIndex contract against every adapter."""

from __future__ import annotations

from collections.abc import Iterator
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
