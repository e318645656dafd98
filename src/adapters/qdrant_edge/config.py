"""The configuration of the shards EdgeIndex creates, and how a shard's is read back.

The layout is :mod:`adapters.qdrant_layout`'s, shared with QdrantIndex: sparse vector
``lexical`` with the IDF modifier and, when a dimension is given, dense vector
``dense`` with cosine distance. What is Edge's own is here: how the engine stores
vectors and optimises the shard, and where it keeps its configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Modifier,
    VectorStorageDatatype,
)

from adapters import qdrant_layout as layout
from adapters.qdrant_layout import DENSE, LEXICAL

# The engine persists the shard's configuration here (EdgeConfig: "provided ->
# persisted"); the shard object itself has no getter for it.
CONFIG_FILE = "edge_config.json"


def edge_config(dense_dimension: int | None) -> EdgeConfig:
    """The configuration of a new shard.

    ``indexing_threshold=0`` turns HNSW building off: exact (plain) dense search
    takes under a millisecond at 10k x 384 (measured), while building HNSW takes
    seconds at that size and minutes at 50k x 1536. ``optimize()`` then only
    vacuums: with both vacuum thresholds at 0 it does so whenever anything was
    deleted, since deleted points keep counting in the IDF statistics until then.

    Dense vectors are stored as float16: half the memory of float32 (the engine
    maps the vector files twice, so 10k x 1536 went from 123 to 61 MB resident)
    and a faster exact scan (2.8 -> 2.1 ms at 10k x 1536), for cosine scores that differ
    by under 2e-5 (1536-d unit vectors; bench/README.md, P7).

    No write-ahead log: every write of the adapter is flushed before it returns,
    which is what makes it durable (a test kills the process right after), and
    the log kept a resident copy of every upsert (61 MB at 10k x 1536, half the
    gap to the 300 MB memory target; bench/README.md, P7). The engine fixes
    this at creation: shards made with a log keep it (``load`` passes no config),
    as float32 shards keep float32.
    """
    vectors: dict[str, EdgeVectorParams] = {}
    if dense_dimension is not None:
        vectors[DENSE] = EdgeVectorParams(
            size=dense_dimension, distance=Distance.Cosine, datatype=VectorStorageDatatype.Float16
        )
    return EdgeConfig(
        vectors=vectors,
        sparse_vectors={LEXICAL: EdgeSparseVectorParams(modifier=Modifier.Idf)},
        optimizers=EdgeOptimizersConfig(
            indexing_threshold=0, deleted_threshold=0.0, vacuum_min_vector_number=0
        ),
        wal_enabled=False,
    )


def shard_exists(shard_dir: Path) -> bool:
    """Whether ``shard_dir`` holds a shard (anything in it: the engine will judge)."""
    return shard_dir.is_dir() and any(shard_dir.iterdir())


def stored_dense_dimension(shard_dir: Path, collection: str) -> int | None:
    """The dense dimension the shard was created with (None: lexical only).

    Raises IndexMismatch if the shard was not laid out by this adapter (other
    vectors, another distance, no IDF on ``lexical``) or its configuration is unreadable.
    """
    where = f"Qdrant Edge collection '{collection}' in {shard_dir}"
    try:
        config = json.loads((shard_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise layout.foreign_layout(where) from exc
    if not isinstance(config, dict):
        raise layout.foreign_layout(where)
    return layout.dense_dimension_of(config, where)
