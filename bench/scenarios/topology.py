"""`POST /chat` at 1, 2, N workers and 50 / 200 / 500 users, beside a LlamaIndex peer.

One fake OpenAI server for the whole run (default: 1.0 s to a non-stream chat answer,
0.05 s per embedding call), so a request's physical floor is L = 1.05 s and a closed
loop of N users completes at best N / L requests a second (performance.md, "the
physical limit and the peer"). In that one run:

1. the fake alone: the load generator calls its chat endpoint directly at each user
   level (a prompt the size of the service's): what the fake itself loses under load;
2. the service (``rag-backend serve``, OpenAI configured: hybrid retrieval over the
   corpus embedded by the fake, answers generated through it) with ``WORKERS=n`` for
   each ``--workers`` level, at each ``--users`` level. Its CPU is summed over its
   process tree (a supervisor and its workers, found in /proc at each sample: the
   scenario works whether WORKERS spawns processes or not, and records how many ran);
3. the peer (``bench/peer/app.py``: a plain LlamaIndex query engine under FastAPI +
   uvicorn, its own venv from ``bench/peer/setup.sh``) over the same corpus and fake,
   at the same user levels.

Corpus: the textbook (../shared/corpus/physical-ai-textbook/docs) when present, else the
generated corpus of ``--chunks`` chunks; the 64 generated questions in rotation for both.
Throughput against the ideal is ``completions_rps`` (answers that arrived in the window,
whatever their start), ratio = completions_rps / (users / L).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.cpus import usable_cpus
from bench import corpus, datasets
from bench.common import (
    BENCH,
    SHARED_CORPUS,
    WORK,
    Proc,
    Sampler,
    TreeSampler,
    clean_env,
    fake_openai,
    fake_qdrant,
    free_port,
    loadgen,
    log,
    process_tree,
    running_service,
    service_env,
    start_service,
)
from entrypoints.instance import RECORD

PEER_PYTHON = WORK / "peer-venv" / "bin" / "python"
PEER_APP = BENCH / "peer" / "app.py"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", default="1,2", help="WORKERS levels for the service")
    p.add_argument("--users", default="50,200,500", help="concurrent users (closed loop)")
    p.add_argument("--duration", type=float, default=20.0, help="recorded seconds per level")
    p.add_argument(
        "--warmup",
        type=float,
        default=8.0,
        help="unrecorded seconds per level: several latencies, so the first burst of N "
        "requests has passed and the loop is steady",
    )
    p.add_argument("--first-byte-latency", type=float, default=1.0)
    p.add_argument("--embedding-latency", type=float, default=0.05)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument(
        "--chunks",
        type=int,
        default=0,
        help="0: the textbook when present, else 10000 generated chunks; N: N generated chunks",
    )
    p.add_argument(
        "--vector-index",
        choices=["edge", "memory", "qdrant"],
        default=None,
        help="VECTOR_INDEX for the service (unset: its default, edge). memory and qdrant "
        "ingest the corpus at start-up (DOCS_PATH) into a fresh DATA_DIR",
    )
    p.add_argument(
        "--qdrant-url",
        default="",
        help="QDRANT_URL with --vector-index qdrant; 'fake': tests/fakes/qdrant_server.py in "
        "its own process, fresh per service run (a stand-in: it serves one request at a time)",
    )
    p.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the LlamaIndex peer too (needs bench/peer/setup.sh)",
    )
    p.add_argument(
        "--peer-mode",
        choices=["async", "sync"],
        default="async",
        help="the peer's route: async def + aquery (default), or def + query (thread pool)",
    )
    p.add_argument(
        "--fake",
        choices=["threads", "loop"],
        default="threads",
        help="the fake OpenAI server: tests/fakes (a thread per connection; the figures so "
        "far) or bench/fake_loop.py (the same answers on one event loop: less CPU per "
        "request, no GIL queue under a mixed load)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    p.add_argument("--no-calibrate", action="store_true", help="skip the fake-alone level")


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _corpus(chunks: int) -> tuple[int | None, Path]:
    selected: int | None = chunks or (None if SHARED_CORPUS.is_dir() else 10000)
    return selected, datasets.corpus_dir(selected)


def _ideal(users: int, floor: float) -> float:
    return users / floor


def _annotate(r: dict[str, Any], users: int, floor: float) -> dict[str, Any]:
    ideal = _ideal(users, floor)
    rate = r.get("completions_rps", r["throughput_rps"])
    r["ideal_rps"] = round(ideal, 1)
    r["ratio_to_ideal"] = round(rate / ideal, 3) if ideal else None
    r["floor_s"] = floor
    if "service_cpu_percent" in r and rate:
        r["cpu_ms_per_request"] = _ms_per_request(r["service_cpu_percent"], rate)
    p50 = r["latency_ms"].get("p50")
    window_ms = 1000 * r["duration_s"]
    if p50 is None or p50 * 3 > window_ms:
        # A closed loop is steady only after a few latencies: the first burst of N requests
        # all arrives at once. Flag it rather than report a transient as a rate.
        r["window_note"] = (
            f"window {r['duration_s']} s < 3 latencies (p50 {p50} ms): not steady, "
            "raise --duration and --warmup"
        )
    return r


def fake_alone(
    fake: Proc, users: list[int], duration: float, warmup: float, floor: float
) -> list[dict[str, Any]]:
    """The fake's chat endpoint called directly at each level (first byte only: its
    floor is that); then, at the lowest level, its embeddings endpoint with the body
    the service sends (one query, base64), so that the fake's own time for both of a
    request's calls is known: what the service's overhead at that level is measured
    against (``_fake_floor_ms``)."""
    first_byte = fake.extra["first_byte_latency"]
    calls = [
        ("chat", "/v1/chat/completions", corpus.fake_chat_body(), first_byte, level)
        for level in users
    ]
    embedding = {
        "model": "text-embedding-3-small",
        "input": ["What is ROS 2?"],
        "encoding_format": "base64",
    }
    calls.append(
        ("embeddings", "/v1/embeddings", embedding, fake.extra["embedding_latency"], min(users))
    )
    rows = []
    for call, path, body, injected, level in calls:
        with Sampler(fake.pid) as sampler:
            r = loadgen(
                fake.base_url.rsplit("/v1", 1)[0],
                path,
                method="POST",
                body=body,
                concurrency=level,
                duration=duration,
                warmup=warmup,
                injected=injected,
            )
        r["call"] = call
        r["fake_cpu_percent"] = sampler.summary()["service_cpu_percent"]
        rows.append(_annotate(r, level, injected))
        log(
            f"fake alone ({call}) u={level}: {r['completions_rps']} rps ({r['ratio_to_ideal']} of "
            f"{r['ideal_rps']}), latency {r['latency_ms']}, errors {r['errors']}"
        )
    return rows


def _fake_floor_ms(rows: list[dict[str, Any]], users: int) -> float | None:
    """The fake's own p50 for a request's two calls (embeddings + chat) at ``users``,
    when both were measured there."""
    p50 = {
        r.get("call", "chat"): r["latency_ms"].get("p50") for r in rows if r["concurrency"] == users
    }
    if p50.get("chat") is None or p50.get("embeddings") is None:
        return None
    return round(p50["chat"] + p50["embeddings"], 2)


def _ms_per_request(cpu_percent: float, rate: float) -> float:
    """CPU ms per request from a process's mean CPU % over the level and its req/s."""
    return round(cpu_percent * 10 / rate, 2)


def _budget(r: dict[str, Any]) -> None:
    """What the cores allow at this level's CPU per request: each process's CPU per
    answer (the service's tree, the fake's, the load generator's) and the rate at
    which they would keep every core of this machine busy (``cpu_bound_rps``), and the
    rate one process of the service could reach on one core (``one_core_bound_rps``):
    a ratio to the ideal above either is out of reach whatever the scheduling."""
    rate = r.get("completions_rps")
    service = r.get("cpu_ms_per_request")
    if not rate or not service:
        return
    fake = _ms_per_request(r.get("fake_cpu_percent", 0.0), rate)
    load = _ms_per_request(r.get("loadgen_cpu_percent", 0.0), rate)
    cores = usable_cpus()  # the service's own WORKERS default reads the same
    r["fake_cpu_ms_per_request"] = fake
    r["loadgen_cpu_ms_per_request"] = load
    r["cores"] = cores
    r["cpu_bound_rps"] = round(cores * 1000 / (service + fake + load), 1)
    r["one_core_bound_rps"] = round(1000 / service, 1)


def _levels_for(
    proc: Proc,
    fake: Proc,
    users: list[int],
    args: argparse.Namespace,
    floor: float,
    bodies: Path,
    label: str,
    qdrant: Proc | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for level in users:
        qdrant_sampler = Sampler(qdrant.pid) if qdrant is not None else None
        with (
            TreeSampler(proc.pid) as tree,
            Sampler(fake.pid) as fake_sampler,
            qdrant_sampler or contextlib.nullcontext(),
        ):
            r = loadgen(
                proc.base_url,
                "/chat",
                method="POST",
                bodies_file=bodies,
                concurrency=level,
                duration=args.duration,
                warmup=args.warmup,
                injected=floor,
                timeout=args.timeout,
            )
        r.update(tree.summary())
        r["fake_cpu_percent"] = fake_sampler.summary()["service_cpu_percent"]
        if qdrant_sampler is not None:
            r["fake_qdrant_cpu_percent"] = qdrant_sampler.summary()["service_cpu_percent"]
        rows.append(_annotate(r, level, floor))
        _budget(r)
        lat = r["latency_ms"]
        log(
            f"{label} u={level}: {r['completions_rps']} rps ({r['ratio_to_ideal']} of ideal "
            f"{r['ideal_rps']}), p50/p95/p99 {lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms, "
            f"errors {r['errors']} {r['error_kinds']}, modes {r['modes']}, CPU "
            f"{r['service_cpu_percent']}% ({r.get('cpu_ms_per_request')} ms/request) over "
            f"{r['service_processes_max']} processes, RSS {r['service_rss_total_peak_mb']} MB"
        )
    return rows


def _wait_for_every_worker(data: Path, timeout: float = 120.0) -> None:
    """Until the supervisor publishes its service record (once every worker listens):
    /health/ready is answered by the first worker alone, and a load that starts before
    the others listen keeps its connections on the first one for the whole run."""
    deadline = time.monotonic() + timeout
    while not (data / RECORD).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no service record in {data} after {timeout} s")
        time.sleep(0.1)


def _settle(pid: int, timeout: float = 15.0) -> int:
    """Wait until the process tree stops growing (workers still starting); its size."""
    deadline = time.monotonic() + timeout
    count, stable_since = len(process_tree(pid)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = len(process_tree(pid))
        if now != count:
            count, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 1.5:
            break
    return count


def _service_data(
    args: argparse.Namespace, chunks: int | None, docs: Path, label: str, qdrant_url: str
) -> tuple[Path, dict[str, str]]:
    """A DATA_DIR for one service run and the env it needs beyond the defaults."""
    extra: dict[str, str] = {}
    if args.vector_index in (None, "edge"):
        prepared = datasets.prepared(chunks, dense=args.dimension)
        if args.vector_index:
            extra["VECTOR_INDEX"] = args.vector_index
        return datasets.copy_of(prepared, label), extra
    data = WORK / "runs" / f"{label}-{int(time.time() * 1000)}"
    data.mkdir(parents=True)
    extra.update(VECTOR_INDEX=args.vector_index, DOCS_PATH=str(docs))
    if args.vector_index == "qdrant":
        extra["QDRANT_URL"] = qdrant_url
    return data, extra


def run_service(
    args: argparse.Namespace,
    fake: Proc,
    workers: int,
    users: list[int],
    floor: float,
    bodies: Path,
    chunks: int | None,
    docs: Path,
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        qdrant = None
        url = args.qdrant_url
        if args.vector_index == "qdrant" and url == "fake":
            qdrant = stack.enter_context(fake_qdrant())
            url = qdrant.base_url
        data, extra = _service_data(args, chunks, docs, f"topology-w{workers}", url)
        env = service_env(data, free_port(), openai=fake, extra={"WORKERS": str(workers), **extra})
        svc = stack.enter_context(running_service(env, timeout=300))
        if workers > 1:
            _wait_for_every_worker(data)
        processes = _settle(svc.pid)
        part: dict[str, Any] = {
            "workers_setting": workers,
            "env": dict(extra),
            "ready_seconds": round(svc.extra["ready_seconds"], 2),
            "processes_at_start": processes,
            "fake_qdrant": qdrant is not None,
        }
        if workers > 1 and processes < 2:
            note = f"WORKERS={workers} but the service runs {processes} process"
            part["note"] = note + (" (VECTOR_INDEX=memory serves with one process)")
            log(part["note"])
        part["levels"] = _levels_for(
            svc, fake, users, args, floor, bodies, f"service WORKERS={workers}", qdrant
        )
    return part


def run_peer(
    args: argparse.Namespace,
    fake: Proc,
    users: list[int],
    floor: float,
    bodies: Path,
    docs: Path,
) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        reason = f"no peer venv at {PEER_PYTHON}: run bash bench/peer/setup.sh"
        log(reason)
        return {"skipped": reason}
    port = free_port()
    env = clean_env(
        PORT=str(port),
        PEER_PORT=str(port),
        PEER_DOCS=str(docs),
        PEER_OPENAI_BASE_URL=fake.base_url,
        PEER_MODE=args.peer_mode,
    )
    proc = start_service(env, name="peer", argv=[str(PEER_PYTHON), str(PEER_APP)])
    try:
        started = time.monotonic()
        health: dict[str, Any] = {}
        with httpx.Client(timeout=2.0) as client:
            while True:
                try:
                    answer = client.get(f"{proc.base_url}/health")
                    if answer.status_code == 200:
                        health = answer.json()
                        break
                except httpx.TransportError:
                    pass
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"peer exited ({proc.popen.returncode}):\n{proc.tail()}")
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"peer not ready in 600 s:\n{proc.tail()}")
                time.sleep(0.2)
        part: dict[str, Any] = {
            "mode": args.peer_mode,
            "ready_seconds": round(time.monotonic() - started, 2),
            "index": health,
        }
        part["levels"] = _levels_for(proc, fake, users, args, floor, bodies, "peer")
        return part
    finally:
        proc.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.vector_index == "qdrant" and not args.qdrant_url:
        raise SystemExit("--vector-index qdrant needs --qdrant-url (a server's URL, or fake)")
    users = _levels(args.users)
    workers = _levels(args.workers)
    floor = args.first_byte_latency + args.embedding_latency
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    chunks, docs = _corpus(args.chunks)
    result: dict[str, Any] = {
        "corpus": "textbook" if chunks is None else f"generated {chunks} chunks",
        "docs": str(docs),
        "dimension": args.dimension,
        "first_byte_latency": args.first_byte_latency,
        "embedding_latency": args.embedding_latency,
        "floor_s": floor,
        "users": users,
        "workers": workers,
        "vector_index": args.vector_index,
        "fake": args.fake,
    }
    if args.vector_index in (None, "edge"):
        datasets.prepared(chunks, dense=args.dimension)  # cached; built with its own fake
    with fake_openai(
        embedding_latency=args.embedding_latency,
        first_byte_latency=args.first_byte_latency,
        dimension=args.dimension,
        kind=args.fake,
    ) as fake:
        if not args.no_calibrate:
            result["fake_alone"] = fake_alone(
                fake, users, args.duration, args.warmup, args.first_byte_latency
            )
        result["service"] = {}
        for n in workers:
            result["service"][str(n)] = run_service(
                args, fake, n, users, floor, bodies, chunks, docs
            )
        if args.peer:
            result["peer"] = run_peer(args, fake, users, floor, bodies, docs)
    datasets.cleanup_runs()
    return result


def _row(name: str, r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    rss = ", ".join(
        f"{p['role']} {p.get('VmHWM', '?')} ({p.get('cpu_seconds')} s CPU)"
        for p in r.get("service_processes", [])
    )
    cpu = ""
    qdrant = ""
    if "fake_qdrant_cpu_percent" in r:
        qdrant = f"fake Qdrant {r['fake_qdrant_cpu_percent']}%, "
    if "service_cpu_percent" in r:
        cpu = (
            f", CPU {r['service_cpu_percent']}% = {r.get('cpu_ms_per_request')} ms/request over "
            f"{r['service_processes_max']} processes (fake {r.get('fake_cpu_percent')}%, "
            f"{qdrant}loadgen {r.get('loadgen_cpu_percent')}%), peak RSS MB (CPU) {rss}"
        )
    return (
        f"  {name} u={r['concurrency']}: {r['completions_rps']} rps = {r['ratio_to_ideal']} x ideal "
        f"{r['ideal_rps']} (started+answered in window {r['throughput_rps']}), latency "
        f"p50/p95/p99 {lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms, errors "
        f"{r['errors']} {r['error_kinds'] or ''}{cpu}"
        + (f" [{r['window_note']}]" if r.get("window_note") else "")
    )


def _limits(r: dict[str, Any], fake_floor: float | None) -> list[str]:
    """The level's CPU budget (``_budget``) and, where the fake's own two calls were
    measured at the same level, the service's p50 over them."""
    lines = []
    if "cpu_bound_rps" in r:
        ideal = r["ideal_rps"]
        lines.append(
            f"    CPU per answer: service {r['cpu_ms_per_request']} + fake "
            f"{r['fake_cpu_ms_per_request']} + loadgen {r['loadgen_cpu_ms_per_request']} ms; "
            f"{r['cores']} cores busy at {r['cpu_bound_rps']} rps "
            f"({r['cpu_bound_rps'] / ideal:.2f} x ideal), one core of the service at "
            f"{r['one_core_bound_rps']} rps ({r['one_core_bound_rps'] / ideal:.2f} x ideal)"
        )
    p50 = r["latency_ms"].get("p50")
    if fake_floor is not None and p50 is not None:
        lines.append(
            f"    p50 {p50} ms = the fake's own two calls {fake_floor} ms "
            f"+ {p50 - fake_floor:.1f} ms (service, HTTP and load generator)"
        )
    return lines


def summary(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['corpus']} ({result['docs']}), dimension {result['dimension']}, floor "
        f"{result['floor_s']} s (embedding {result['embedding_latency']} + first byte "
        f"{result['first_byte_latency']}), ideal = users / {result['floor_s']} s, fake "
        f"{result.get('fake', 'threads')}"
    ]
    alone = result.get("fake_alone", [])
    for r in alone:
        call = r.get("call", "chat")
        lines.append(_row(f"fake alone ({call} only, ideal users / its latency)", r))
    for n, part in result.get("service", {}).items():
        lines.append(
            f"service WORKERS={n}: {part['processes_at_start']} process(es) at start, ready in "
            f"{part['ready_seconds']} s {part.get('note', '')}".rstrip()
        )
        for r in part["levels"]:
            lines.append(_row(f"service w={n}", r))
            lines.extend(_limits(r, _fake_floor_ms(alone, r["concurrency"])))
    peer = result.get("peer") or {}
    if "skipped" in peer:
        lines.append(f"peer skipped: {peer['skipped']}")
    elif peer:
        lines.append(
            f"peer (LlamaIndex, {peer['mode']} route): index {json.dumps(peer['index'])}, "
            f"ready in {peer['ready_seconds']} s"
        )
        lines.extend(_row("peer", r) for r in peer["levels"])
        by_users = {r["concurrency"]: r for r in peer["levels"]}
        for n, part in result.get("service", {}).items():
            ratios = []
            for r in part["levels"]:
                other = by_users.get(r["concurrency"])
                if not other:
                    continue
                if other.get("completions_rps"):
                    ratio = r["completions_rps"] / other["completions_rps"]
                    ratios.append(f"u={r['concurrency']} {ratio:.2f}x")
                else:
                    ratios.append(f"u={r['concurrency']} - (the peer answered none in the window)")
            lines.append(f"service WORKERS={n} / peer throughput: {', '.join(ratios)}")
    return lines
