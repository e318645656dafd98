"""Runs the VectorIndex contract against every adapter."""

from __future__ import annotations

from pathlib import Path

from vector_index_contract import VectorIndexContract

from adapters.memory.index import InMemoryIndex
from adapters.qdrant_index import QdrantIndex
from rag_core.ports import VectorIndex


class TestInMemoryIndex(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return InMemoryIndex()


class TestQdrantMemory(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return QdrantIndex.memory("docs")


class TestQdrantLocal(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        return QdrantIndex.local(tmp_path / "qdrant", "docs")


class TestQdrantEdge(VectorIndexContract):
    async def make_index(self, tmp_path: Path) -> VectorIndex:
        from adapters.qdrant_edge import EdgeIndex

        return EdgeIndex.open(tmp_path / "edge", "docs")
