"""The storage layout both Qdrant adapters share: pinned, so existing indexes keep
opening, and checked the same way by the server and the embedded adapter."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient, models

from adapters import qdrant_layout as layout
from adapters.qdrant_index import QdrantIndex
from rag_core.documents import Chunk, SparseVector
from rag_core.errors import IndexMismatch
from rag_core.ports import SearchQuery

CHUNK = Chunk(
    id=str(uuid.uuid5(uuid.NAMESPACE_URL, "docs/a.md#0")),
    document_id="docs/a.md",
    ordinal=0,
    text="chunk 0",
    heading_path=("Intro", "Setup"),
    content_hash="h0",
    route="/docs/a",
    title="A",
    section="docs",
    source="/srv/docs",
)


class Point:
    def __init__(self, point_id: object, payload: dict[str, Any] | None) -> None:
        self.id = point_id
        self.payload = payload


def test_the_payload_keys_are_the_ones_existing_indexes_hold() -> None:
    payload = layout.payload(CHUNK)
    assert json.loads(json.dumps(payload)) == {  # as the clients store it
        "document_id": "docs/a.md",
        "ordinal": 0,
        "text": "chunk 0",
        "heading_path": ["Intro", "Setup"],
        "content_hash": "h0",
        "route": "/docs/a",
        "title": "A",
        "section": "docs",
        "source": "/srv/docs",
    }
    assert (layout.LEXICAL, layout.DENSE) == ("lexical", "dense")
    assert layout.KEYWORD_FIELDS == ("document_id", "section", "source")
    assert layout.chunk(Point(CHUNK.id, payload)) == CHUNK


def test_a_point_without_a_chunk_payload_is_a_mismatch() -> None:
    for payload in (None, {"document_id": "docs/a.md"}):
        with pytest.raises(IndexMismatch, match="re-index"):
            layout.chunk(Point(CHUNK.id, payload))


def test_ids_are_grouped_by_document_across_pages() -> None:
    grouped = layout.DocumentChunkIds()
    grouped.add([Point("1", {"document_id": "a"}), Point("2", {"document_id": "b"})])
    grouped.add([Point("3", {"document_id": "a"})])
    assert grouped.result() == {"a": frozenset({"1", "3"}), "b": frozenset({"2"})}


LEXICAL_IDF = {"lexical": {"modifier": "idf"}}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"vectors": {}, "sparse_vectors": LEXICAL_IDF}, None),
        (  # as Qdrant Edge persists it
            {
                "vectors": {"dense": {"size": 4, "distance": "Cosine", "datatype": "float16"}},
                "sparse_vectors": LEXICAL_IDF,
                "wal_enabled": False,
            },
            4,
        ),
        (  # as qdrant-client's CollectionParams dumps it
            {
                "vectors": {"dense": {"size": 384, "distance": "Cosine", "on_disk": None}},
                "sparse_vectors": {"lexical": {"index": None, "modifier": "idf"}},
                "shard_number": None,
            },
            384,
        ),
    ],
)
def test_the_layout_check_reads_both_adapters_configurations(
    config: dict[str, Any], expected: int | None
) -> None:
    assert layout.dense_dimension_of(config, "Qdrant collection 'docs'") == expected


@pytest.mark.parametrize(
    "config",
    [
        {"vectors": {}, "sparse_vectors": {"lexical": {"modifier": None}}},
        {"vectors": {}, "sparse_vectors": {**LEXICAL_IDF, "other": {"modifier": "idf"}}},
        {"vectors": {"dense": {"size": 4, "distance": "Dot"}}, "sparse_vectors": LEXICAL_IDF},
        {"vectors": {"size": 4, "distance": "Cosine"}, "sparse_vectors": LEXICAL_IDF},  # unnamed
        {"vectors": {"dense": {"distance": "Cosine"}}, "sparse_vectors": LEXICAL_IDF},
        {"vectors": ["dense"], "sparse_vectors": LEXICAL_IDF},
    ],
)
def test_the_layout_check_refuses_what_it_did_not_lay_out(config: dict[str, Any]) -> None:
    with pytest.raises(IndexMismatch, match="'docs' was not created by this adapter"):
        layout.dense_dimension_of(config, "Qdrant collection 'docs'")


async def test_a_server_collection_without_idf_is_a_mismatch() -> None:
    client = AsyncQdrantClient(location=":memory:")
    await client.create_collection(
        "docs", vectors_config={}, sparse_vectors_config={"lexical": models.SparseVectorParams()}
    )
    index = QdrantIndex(client, "docs")
    try:
        with pytest.raises(IndexMismatch, match="with IDF"):
            await index.prepare(None)
    finally:
        await index.close()


async def test_a_server_point_without_a_chunk_payload_is_a_mismatch() -> None:
    index = QdrantIndex.memory("docs")
    try:
        await index.prepare(None)
        point = models.PointStruct(
            id=CHUNK.id,
            vector={"lexical": models.SparseVector(indices=[1], values=[1.0])},
            payload={"document_id": "docs/a.md"},
        )
        await index.client.upsert("docs", points=[point])
        query = SearchQuery(sparse=SparseVector(indices=(1,), values=(1.0,)))
        with pytest.raises(IndexMismatch, match="does not hold a chunk payload"):
            await index.search(query)
        with pytest.raises(IndexMismatch, match="does not hold a chunk payload"):
            await index.chunks()
    finally:
        await index.close()
