"""The cost of an index call through the index owner's socket (adapters.index_owner)
against the same call in process, on Qdrant Edge at 10k chunks x 1536 dimensions.

    python -m bench.experiments.index_owner [--chunks 10000] [--dimension 1536] [--calls 500]
        [--client-loop uvloop|asyncio] [--owner-loop uvloop|asyncio]

The chunks are the generated corpus (bench/corpus.py) cut by the real Chunker and
encoded by the real LexicalEncoder, with random unit dense vectors; the queries are
the corpus' questions (a SearchQuery as the Retriever sends it: sparse + dense, 24
candidates) and the neighbourhoods the Retriever reads for their best 6 passages.
Each call is timed sequentially and 50 at a time, in process (EdgeIndex in this
process) and remote (RemoteIndex here, the owner a process of its own, run by
entrypoints.index_owner.run). Prints one JSON line per row: wall microseconds per
call (mean, p50, p95), calls per second, this process's CPU per call and the owner's
(every thread, from schedstat). Last, the serialization alone: this codec against
pickle for one search's request and answer, both ends. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pickle
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapters.filesystem import read_documents
from adapters.index_owner import RemoteIndex, wire
from adapters.qdrant_edge import EdgeIndex
from bench import corpus
from bench.common import ROOT, WORK, clean_env, log, pct
from rag_core.chunking import Chunker
from rag_core.context import REACH
from rag_core.documents import IndexedChunk
from rag_core.lexical import LexicalEncoder
from rag_core.ports import SearchQuery, VectorIndex

COLLECTION = "documentation"
SRC = ROOT / "src"
OWNER = """
import asyncio, sys
from pathlib import Path
from adapters.settings import Settings
from entrypoints import index_owner
if sys.argv[2] == "asyncio":  # the experiment's comparison only
    import uvloop
    uvloop.run = asyncio.run
index_owner.run(Settings(), Path(sys.argv[1]))
"""

Call = Callable[[VectorIndex, int], Awaitable[object]]


def cpu_seconds(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` so far, to the nanosecond (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _unit(rng: random.Random, d: int) -> tuple[float, ...]:
    v = [rng.gauss(0, 1) for _ in range(d)]
    norm = sum(x * x for x in v) ** 0.5
    return tuple(x / norm for x in v)


def _items(chunks: int, dimension: int) -> list[IndexedChunk]:
    folder = Path(str(corpus.generate(chunks)["path"]))
    encoder, chunker, rng = LexicalEncoder(), Chunker(), random.Random(1)
    items = []
    for document in read_documents(folder):
        for chunk in chunker.split(document):
            sparse = encoder.encode_document(chunk.text, heading=chunk.breadcrumb)
            items.append(IndexedChunk(chunk, sparse, _unit(rng, dimension)))
    return items[:chunks]


async def _build(data: Path, items: list[IndexedChunk], dimension: int) -> None:
    shutil.rmtree(data, ignore_errors=True)
    edge = EdgeIndex.open(data / "qdrant-edge", COLLECTION)
    await edge.prepare(dimension)
    for start in range(0, len(items), 1024):
        await edge.upsert(items[start : start + 1024])
    await edge.close()


def _queries(n: int, dimension: int) -> list[SearchQuery]:
    encoder, rng = LexicalEncoder(), random.Random(2)
    return [
        SearchQuery(encoder.encode_query(q), _unit(rng, dimension), limit=24)
        for q in corpus.queries(n)
    ]


async def _spans(
    index: VectorIndex, queries: list[SearchQuery]
) -> list[list[tuple[str, int, int]]]:
    out = []
    for query in queries:
        best = (await index.search(query))[:6]
        out.append(
            [
                (p.chunk.document_id, max(0, p.chunk.ordinal - REACH), p.chunk.ordinal + REACH)
                for p in best
            ]
        )
    return out


async def _measure(
    index: VectorIndex, call: Call, calls: int, concurrency: int, owner: int | None
) -> dict[str, Any]:
    for i in range(20):  # warm
        await call(index, i)
    latencies: list[float] = []

    async def timed(i: int) -> None:
        started = time.perf_counter()
        await call(index, i)
        latencies.append(time.perf_counter() - started)

    owner_cpu = cpu_seconds(owner) if owner else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    if concurrency == 1:
        for i in range(calls):
            await timed(i)
    else:
        for start in range(0, calls, concurrency):
            await asyncio.gather(*(timed(i) for i in range(start, start + concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    latencies.sort()
    micro = [x * 1e6 for x in latencies]
    row: dict[str, Any] = {
        "latency_us": round(sum(micro) / len(micro)),
        "p50_us": round(pct(micro, 50)),
        "p95_us": round(pct(micro, 95)),
        "calls_per_s": round(calls / wall),
        "this_process_cpu_us": round(cpu / calls * 1e6),
    }
    if owner:
        row["owner_cpu_us"] = round((cpu_seconds(owner) - owner_cpu) / calls * 1e6)
    return row


def _codec(query: SearchQuery, answer: list[Any], rounds: int = 300) -> list[dict[str, Any]]:
    def json_way() -> None:
        request = wire.dumps({"id": 1, "op": "search", "args": [wire.query_to_wire(query)]})
        wire.query_from_wire(wire.loads(request)["args"][0])
        reply = wire.dumps({"id": 1, "ok": [wire.passage_to_wire(p) for p in answer]})
        [wire.passage_from_wire(p) for p in wire.loads(reply)["ok"]]

    def pickle_way() -> None:
        pickle.loads(pickle.dumps(("search", query), protocol=5))
        pickle.loads(pickle.dumps(answer, protocol=5))

    rows = []
    for name, way in (("json codec", json_way), ("pickle", pickle_way)):
        way()
        started = time.process_time()
        for _ in range(rounds):
            way()
        spent = (time.process_time() - started) / rounds * 1e6
        rows.append({"codec": name, "search_request_and_answer_cpu_us": round(spent)})
    return rows


async def _rows(
    index: VectorIndex, where: str, calls: Call, name: str, n: int, owner: int | None
) -> None:
    for concurrency in (1, 50):
        row = await _measure(index, calls, n, concurrency, owner)
        print(
            json.dumps({"call": name, "where": where, "concurrency": concurrency} | row), flush=True
        )


def _start_owner(socket: Path, data: Path, loop: str) -> subprocess.Popen[bytes]:
    env = clean_env(DATA_DIR=str(data), VECTOR_INDEX="edge", PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-c", OWNER, str(socket), loop], env=env)


def _stop(owner: subprocess.Popen[bytes]) -> None:
    owner.terminate()
    owner.wait(timeout=30)


async def main_async(args: argparse.Namespace) -> None:
    work = WORK / "index-owner"
    data = work / "data"
    built = work / f"built-{args.chunks}x{args.dimension}"
    items = _items(args.chunks, args.dimension)
    if not built.exists():
        log(f"building {args.chunks} chunks x {args.dimension}")
        built.unlink(missing_ok=True)
        for old in work.glob("built-*"):
            old.unlink()
        await _build(data, items, args.dimension)
        built.touch()
    queries = _queries(64, args.dimension)

    edge = EdgeIndex.open(data / "qdrant-edge", COLLECTION)
    await edge.prepare(args.dimension)
    spans = await _spans(edge, queries)
    answer = await edge.search(queries[0])
    sizes = {
        "chunks": len(items),
        "search_answer_bytes": len(wire.dumps({"ok": [wire.passage_to_wire(p) for p in answer]})),
        "search_request_bytes": len(wire.dumps({"args": [wire.query_to_wire(queries[0])]})),
    }
    print(json.dumps(sizes), flush=True)

    async def search(index: VectorIndex, i: int) -> object:
        return await index.search(queries[i % len(queries)])

    async def neighbourhood(index: VectorIndex, i: int) -> object:
        return await index.neighbourhood(spans[i % len(spans)])

    async def probe(index: VectorIndex, i: int) -> object:
        return await index.probe()

    table: list[tuple[str, Call]] = [
        ("search", search),
        ("neighbourhood", neighbourhood),
        ("probe", probe),
    ]
    for name, call in table:
        await _rows(edge, "in process", call, name, args.calls, None)
    await edge.close()

    socket = work / "owner.sock"
    owner = _start_owner(socket, data, args.owner_loop)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            if owner.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the owner did not start")
            await asyncio.sleep(0.05)
        remote = RemoteIndex(socket, timeout=30)
        await remote.prepare(args.dimension)
        for name, call in table:
            await _rows(remote, "remote", call, name, args.calls, owner.pid)
        await remote.close()
    finally:
        await asyncio.to_thread(_stop, owner)
    for row in _codec(queries[0], answer):
        print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--client-loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--owner-loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = p.parse_args()
    print(json.dumps({"client_loop": args.client_loop, "owner_loop": args.owner_loop}))
    if args.client_loop == "uvloop":  # as uvicorn runs the workers
        import uvloop

        uvloop.run(main_async(args))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
