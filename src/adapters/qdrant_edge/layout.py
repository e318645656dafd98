"""The shard layout EdgeIndex creates, and how an existing shard's layout is read back.

Same layout as :class:`adapters.qdrant_index.QdrantIndex`: sparse vector ``lexical``
with the IDF modifier (the engine scores BM25 from the encoder's document-side
weights) and, when a dimension is given, dense vector ``dense`` with cosine distance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Modifier,
    VectorStorageDatatype,
)

from rag_core.errors import IndexMismatch

LEXICAL = "lexical"
DENSE = "dense"
KEYWORD_FIELDS = ("document_id", "section", "source")
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
    try:
        config = json.loads((shard_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        return _dense_dimension_of(config)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise IndexMismatch(
            f"Qdrant Edge collection '{collection}' in {shard_dir} was not created by this "
            f"adapter (expected sparse '{LEXICAL}' with IDF and optional cosine '{DENSE}'); "
            "a re-index is needed"
        ) from exc


def _dense_dimension_of(config: dict[str, Any]) -> int | None:
    vectors = config.get("vectors") or {}
    sparse = config.get("sparse_vectors") or {}
    lexical = sparse.get(LEXICAL) or {}
    dense = vectors.get(DENSE)
    if (
        set(sparse) != {LEXICAL}
        or str(lexical.get("modifier", "")).lower() != "idf"
        or set(vectors) - {DENSE}
        or (dense is not None and str(dense.get("distance", "")).lower() != "cosine")
    ):
        raise ValueError("unexpected layout")
    return None if dense is None else int(dense["size"])


def describe(dense_dimension: int | None) -> str:
    if dense_dimension is None:
        return "no dense vectors (lexical only)"
    return f"dense vectors of dimension {dense_dimension}"


def check_dense(dimension: int, prepared_for: int | None, collection: str) -> None:
    """Raise IndexMismatch unless a dense vector of ``dimension`` fits the prepared layout."""
    if dimension != prepared_for:
        raise IndexMismatch(
            f"dense vector of dimension {dimension}, but Qdrant Edge collection "
            f"'{collection}' is prepared for {describe(prepared_for)}"
        )
