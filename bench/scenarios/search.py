"""Search latency at 1k / 10k / 100k chunks.

1. Directly through the real index adapter (EdgeIndex, Qdrant Edge in-process), on a
   copy of a DATA_DIR the CLI ingested: ``Retriever.search`` (query encoding, index
   search, diversity: what /chat runs) and the bare ``EdgeIndex.search``, sequentially
   (64 questions x ``rounds``) and as bursts of 50 concurrent searches. Lexical at every
   size; hybrid (sparse + 1536-d dense, RRF) where a dense index was prepared.
2. Through `POST /chat` in lexical mode (no OpenAI key: BM25 retrieval and extractive
   answers, so zero upstream time and the whole latency is the service's), at
   concurrency 1 and 50.

Building the 100k index is bounded by ``--max-seconds``; a size that cannot be built
in time is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any

from bench import corpus, datasets
from bench.common import WORK, Sampler, free_port, loadgen, log, pct, running_service, service_env


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument(
        "--dense-sizes", default="1000,10000", help="sizes also measured hybrid (1536-d)"
    )
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per /chat level")
    p.add_argument("--levels", default="1,50")
    p.add_argument("--max-seconds", type=float, default=900, help="bound on building one index")


class _VectorEmbedder:
    """Deterministic unit vectors (a stand-in for the model: latency is not the point)."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.model = "bench"

    async def embed(self, texts: Any) -> list[tuple[float, ...]]:
        out = []
        for text in texts:
            rng = random.Random(hashlib.blake2b(text.encode(), digest_size=8).digest())
            values = [rng.gauss(0, 1) for _ in range(self.dimension)]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            out.append(tuple(v / norm for v in values))
        return out


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    return {
        "p50": round(pct(ordered, 50), 3),
        "p95": round(pct(ordered, 95), 3),
        "p99": round(pct(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


async def _direct(
    data: Path, dense: int | None, questions: list[str], rounds: int
) -> dict[str, Any]:
    from adapters.qdrant_edge import EdgeIndex
    from rag_core.lexical import LexicalEncoder
    from rag_core.ports import SearchQuery
    from rag_core.retrieval import Retriever

    index = EdgeIndex.open(data / "qdrant-edge", "documentation")
    try:
        started = time.perf_counter()
        await index.prepare(dense)
        count = await index.count()
        open_s = time.perf_counter() - started
        encoder = LexicalEncoder()
        embedder = _VectorEmbedder(dense) if dense else None
        retriever = Retriever(index, encoder, embedder)  # type: ignore[arg-type]
        vectors = (
            dict(zip(questions, await embedder.embed(questions), strict=True)) if embedder else {}
        )
        queries = [
            SearchQuery(sparse=encoder.encode_query(q), dense=vectors.get(q), limit=24)
            for q in questions
        ]
        for q in questions[:8]:  # warm up
            await retriever.search(q)
        full: list[float] = []
        bare: list[float] = []
        for _ in range(rounds):
            for q, query in zip(questions, queries, strict=True):
                t = time.perf_counter()
                await retriever.search(q)
                full.append(time.perf_counter() - t)
                t = time.perf_counter()
                await index.search(query)
                bare.append(time.perf_counter() - t)
        bursts: list[float] = []
        per_search: list[float] = []

        async def timed(q: str) -> None:
            t = time.perf_counter()
            await retriever.search(q)
            per_search.append(time.perf_counter() - t)

        for r in range(rounds):
            batch = [questions[(r * 50 + i) % len(questions)] for i in range(50)]
            t = time.perf_counter()
            await asyncio.gather(*(timed(q) for q in batch))
            bursts.append(time.perf_counter() - t)
        return {
            "mode": "hybrid" if dense else "lexical",
            "points": count,
            "open_prepare_count_s": round(open_s, 3),
            "retriever_search_ms": _ms(full),
            "index_search_ms": _ms(bare),
            "burst50_wall_ms_median": round(sorted(bursts)[len(bursts) // 2] * 1000, 2),
            "burst50_per_search_ms": _ms(per_search),
            "searches_per_s_in_burst": round(50 / (sorted(bursts)[len(bursts) // 2]), 1),
        }
    finally:
        await index.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    questions = corpus.queries(64)
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    dense_sizes = [int(x) for x in args.dense_sizes.split(",") if x.strip()]
    result: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        entry: dict[str, Any] = {}
        result["sizes"][str(size)] = entry
        try:
            started = time.perf_counter()
            prepared = datasets.prepared(size, timeout=args.max_seconds)
            entry["build"] = json.loads((prepared.parent / f"{prepared.name}.json").read_text())
            entry["build_wall_s_this_run"] = round(time.perf_counter() - started, 1)
        except Exception as exc:  # a timeout or failure is a result too
            entry["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            log(f"{size}: could not build the index: {entry['error']}")
            continue
        data = datasets.copy_of(prepared, f"search-{size}")
        entry["direct_lexical"] = asyncio.run(_direct(data, None, questions, args.rounds))
        log(f"{size} direct lexical: {entry['direct_lexical']}")
        env = service_env(data, free_port())
        with running_service(env) as svc:
            entry["chat_lexical"] = []
            for level in [int(x) for x in args.levels.split(",") if x.strip()]:
                with Sampler(svc.pid) as sampler:
                    r = loadgen(
                        svc.base_url,
                        "/chat",
                        method="POST",
                        bodies_file=bodies,
                        concurrency=level,
                        duration=args.duration,
                        warmup=2,
                    )
                r.update(sampler.summary())
                entry["chat_lexical"].append(r)
                log(
                    f"{size} /chat lexical c={level}: {r['throughput_rps']} rps {r['latency_ms']} errors {r['errors']} modes {r['modes']}"
                )
        if size in dense_sizes:
            try:
                prepared_dense = datasets.prepared(
                    size, dense=args.dimension, timeout=args.max_seconds
                )
                data = datasets.copy_of(prepared_dense, f"search-{size}-dense")
                entry["direct_hybrid"] = asyncio.run(
                    _direct(data, args.dimension, questions, args.rounds)
                )
                log(f"{size} direct hybrid: {entry['direct_hybrid']}")
            except Exception as exc:
                entry["hybrid_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for size, entry in result["sizes"].items():
        if "error" in entry:
            lines.append(f"{size} chunks: not measured ({entry['error']})")
            continue
        for key in ("direct_lexical", "direct_hybrid"):
            d = entry.get(key)
            if not d:
                continue
            r, b = d["retriever_search_ms"], d["index_search_ms"]
            lines.append(
                f"{size} chunks ({d['points']} points) {d['mode']} direct: Retriever.search p50/p95/p99 "
                f"{r['p50']}/{r['p95']}/{r['p99']} ms; EdgeIndex.search {b['p50']}/{b['p95']}/{b['p99']} ms; "
                f"burst of 50: {d['burst50_wall_ms_median']} ms ({d['searches_per_s_in_burst']} searches/s)"
            )
        for r in entry.get("chat_lexical", []):
            lat = r["latency_ms"]
            lines.append(
                f"{size} chunks /chat lexical c={r['concurrency']}: {r['throughput_rps']} rps, p50/p95/p99 "
                f"{lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms, errors {r['errors']}, "
                f"service CPU {r['service_cpu_percent']}%"
            )
        if "build" in entry:
            lines.append(
                f"{size} chunks index built by the CLI in {entry['build'].get('seconds')} s"
            )
    return lines
