"""Ingestion through the real CLI (`rag-backend ingest`), wall time of the whole command
(process start, imports and index open included), each on a fresh DATA_DIR:

- the textbook corpus (../shared/corpus/physical-ai-textbook/docs), offline (lexical)
  and with the fake embeddings server; then re-ingested unchanged;
- generated corpora of 10k chunks (about 9 MB of Markdown) and 100k chunks, offline,
  and 10k with embeddings; then re-ingested unchanged;
- re-ingest handed over to a running service (`POST /ingest`): the route's counters
  say how many embedding calls it made.

The report line the CLI prints (documents added/changed/unchanged, chunks written,
embedding calls) is recorded with each timing.

Targets: textbook < 5 s offline; unchanged re-ingest < 1 s with zero embedding calls;
~10 MB / ~10k chunks in embedded mode < 60 s.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from bench import datasets
from bench.common import (
    WORK,
    cli,
    fake_openai,
    free_port,
    fresh_dir,
    log,
    median,
    parse_report,
    running_service,
    service_env,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=int, default=3, help="runs of the textbook cases")
    p.add_argument("--sizes", default="10000,100000", help="generated corpora (chunks)")
    p.add_argument(
        "--dense-sizes", default="10000", help="generated corpora ingested with embeddings"
    )
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument(
        "--embedding-latency", type=float, default=0.1, help="seconds per embeddings request"
    )
    p.add_argument("--max-seconds", type=float, default=900, help="bound on one ingest command")


def _ingest(
    source: Path, data: Path, env_extra: dict[str, str] | None, timeout: float, openai: Any = None
) -> dict[str, Any]:
    env = service_env(data, free_port(), openai=openai, extra=env_extra)
    try:
        seconds, done = cli("ingest", str(source), env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "timeout": timeout}
    if done.returncode != 0:
        return {"seconds": round(seconds, 2), "error": done.stderr[-1500:]}
    return {"seconds": round(seconds, 3), **parse_report(done.stdout)}


def _case(
    name: str, source: Path, repeats: int, timeout: float, openai: Any = None
) -> dict[str, Any]:
    """``repeats`` x (fresh ingest, then unchanged re-ingest) on a new DATA_DIR each."""
    fresh: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    for i in range(repeats):
        data = fresh_dir(WORK / "runs" / f"ingest-{name}-{i}")
        fresh.append(_ingest(source, data, None, timeout, openai))
        log(f"{name} fresh #{i + 1}: {fresh[-1]}")
        if fresh[-1].get("seconds") is None or "error" in fresh[-1]:
            break
        again.append(_ingest(source, data, None, timeout, openai))
        log(f"{name} unchanged #{i + 1}: {again[-1]}")
    ok_fresh = [r["seconds"] for r in fresh if r.get("seconds") is not None and "error" not in r]
    ok_again = [r["seconds"] for r in again if r.get("seconds") is not None and "error" not in r]
    return {
        "source": str(source),
        "fresh": fresh,
        "unchanged": again,
        "fresh_median_s": median(ok_fresh),
        "unchanged_median_s": median(ok_again),
        "unchanged_embedding_calls": [r.get("embedding_calls") for r in again],
        "last_data_dir": str(WORK / "runs" / f"ingest-{name}-{len(fresh) - 1}"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"cases": {}}
    cases = result["cases"]
    timeout = args.max_seconds
    try:
        textbook: Path | None = datasets.corpus_dir(None)
    except FileNotFoundError:
        textbook = None
        result["textbook"] = "not present"
    if textbook is not None:
        cases["textbook offline"] = _case("textbook-offline", textbook, args.repeats, timeout)
        with fake_openai(
            embedding_latency=args.embedding_latency, dimension=args.dimension
        ) as fake:
            cases["textbook embeddings"] = _case(
                "textbook-dense", textbook, args.repeats, timeout, fake
            )
    from bench import corpus

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    dense_sizes = [int(x) for x in args.dense_sizes.split(",") if x.strip()]
    for size in sorted(set(sizes) | set(dense_sizes)):
        manifest = corpus.generate(size)
        source = Path(str(manifest["path"]))
        if size in sizes:
            key = f"{size} chunks offline"
            cases[key] = _case(f"{size}-offline", source, 1, timeout)
            cases[key]["corpus"] = manifest
        if size in dense_sizes:
            key = f"{size} chunks embeddings"
            with fake_openai(
                embedding_latency=args.embedding_latency, dimension=args.dimension
            ) as fake:
                cases[key] = _case(f"{size}-dense", source, 1, timeout, fake)
            cases[key]["corpus"] = manifest
    # Hand-over: the index is held by a running service; the CLI posts to /ingest.
    handover_size = next((s for s in sizes if s <= 10000), None)
    if handover_size is not None:
        key = f"{handover_size} chunks offline"
        data = Path(cases[key]["last_data_dir"])
        source = Path(cases[key]["source"])
        port = free_port()
        env = service_env(data, port)
        with running_service(env):
            seconds, done = cli("ingest", str(source), env=env, timeout=timeout)
            report = parse_report(done.stdout)
            report["seconds_server"] = report.pop("seconds", None)
            cases[f"{handover_size} chunks unchanged, handed over to /ingest"] = {
                "seconds": round(seconds, 3),
                "returncode": done.returncode,
                **report,
            }
            log(
                f"hand-over: {seconds:.2f} s {done.stdout.strip()[-300:]} {done.stderr.strip()[-200:]}"
            )
    datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, case in result["cases"].items():
        if "fresh" not in case:
            lines.append(
                f"{name}: {case['seconds']} s, embedding calls {case.get('embedding_calls')}, "
                f"documents unchanged {case.get('documents_unchanged')}, server-side {case.get('seconds_server', '')}"
            )
            continue
        first = case["fresh"][0] if case["fresh"] else {}
        corpus = case.get("corpus", {})
        size = f", {corpus.get('bytes', 0) / 1e6:.1f} MB" if corpus else ""
        lines.append(
            f"{name}: fresh {case['fresh_median_s']} s (runs {[r.get('seconds') for r in case['fresh']]}; "
            f"{first.get('chunks_written')} chunks{size}, {first.get('embedding_calls')} embedding calls); "
            f"unchanged {case['unchanged_median_s']} s (runs {[r.get('seconds') for r in case['unchanged']]}, "
            f"embedding calls {case['unchanged_embedding_calls']})"
            + (f"; TIMEOUT after {first['timeout']} s" if first.get("timeout") else "")
            + (f"; ERROR {first['error'][-200:]}" if first.get("error") else "")
        )
    return lines
