"""Dense search cost in Qdrant Edge at N x D: the adapter's layout (plain exact search)
against int8 scalar quantization (with rescoring) and HNSW, on random unit vectors.

    python -m bench.experiments.edge_dense --points 10000 --dimension 1536

Prints build seconds and query p50/p95 (ms) per configuration. Evidence for the
proposal in bench/README.md; not used by the scenarios.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
import uuid

from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    HnswIndexConfig,
    Point,
    Query,
    QueryRequest,
    ScalarQuantizationConfig,
    ScalarType,
    UpdateOperation,
)

from bench.common import WORK, pct


def _vectors(n: int, d: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        v = [rng.gauss(0, 1) for _ in range(d)]
        norm = sum(x * x for x in v) ** 0.5
        out.append([x / norm for x in v])
    return out


def measure(
    name: str, config: EdgeConfig, data: list[list[float]], queries: list[list[float]]
) -> dict:
    path = WORK / "edge-dense" / name
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    shard = EdgeShard.create(str(path), config)
    t = time.perf_counter()
    for start in range(0, len(data), 256):
        batch = [
            Point(str(uuid.UUID(int=i + 1)), {"dense": v}, {})
            for i, v in enumerate(data[start : start + 256], start)
        ]
        shard.update(UpdateOperation.upsert_points(batch))
    shard.flush()
    shard.optimize()
    build = time.perf_counter() - t
    times = []
    for q in queries:
        t = time.perf_counter()
        shard.query(
            QueryRequest(limit=48, query=Query.Nearest(q, using="dense"), with_payload=False)
        )
        times.append((time.perf_counter() - t) * 1000)
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    times.sort()
    return {
        "config": name,
        "build_s": round(build, 2),
        "p50_ms": round(pct(times, 50), 3),
        "p95_ms": round(pct(times, 95), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    data = _vectors(args.points, args.dimension, 1)
    queries = _vectors(args.queries, args.dimension, 2)
    vectors = {"dense": EdgeVectorParams(size=args.dimension, distance=Distance.Cosine)}
    plain = EdgeOptimizersConfig(
        indexing_threshold=0, deleted_threshold=0.0, vacuum_min_vector_number=0
    )
    configs = {
        "plain (the adapter's layout)": EdgeConfig(vectors=vectors, optimizers=plain),
        "plain + int8 quantization": EdgeConfig(
            vectors=vectors,
            optimizers=plain,
            quantization_config=ScalarQuantizationConfig(
                ScalarType.Int8, quantile=0.99, always_ram=True
            ),
        ),
        "hnsw m=16": EdgeConfig(
            vectors=vectors,
            optimizers=EdgeOptimizersConfig(
                indexing_threshold=1000, deleted_threshold=0.0, vacuum_min_vector_number=0
            ),
            hnsw_config=HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=1000),
        ),
    }
    for name, config in configs.items():
        print(
            json.dumps(
                measure(name.split(" (")[0].replace(" ", "-"), config, data, queries)
                | {"name": name}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
