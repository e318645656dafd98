"""Resident memory of the service (VmRSS now, VmHWM peak, from /proc) in embedded mode:
after start-up, then after ``--requests`` /chat requests at concurrency 50.

Cases: empty index; 10k chunks lexical (no OpenAI key); 10k chunks with 1536-d
vectors and the fake OpenAI server (zero latency). Target: < 300 MB with 10k chunks.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench import corpus, datasets
from bench.common import (
    WORK,
    fake_openai,
    free_port,
    fresh_dir,
    loadgen,
    log,
    rss_mb,
    running_service,
    service_env,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunks", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--requests", type=int, default=1000)


def _measure(env: dict[str, str], requests: int, bodies: Any) -> dict[str, Any]:
    with running_service(env) as svc:
        time.sleep(1.0)
        out: dict[str, Any] = {"after_start": rss_mb(svc.pid)}
        if requests:
            r = loadgen(
                svc.base_url,
                "/chat",
                method="POST",
                bodies_file=bodies,
                concurrency=50,
                duration=120,
                max_requests=requests,
                warmup=0,
                timeout=60,
            )
            out["load"] = {k: r[k] for k in ("requests", "errors", "throughput_rps", "modes")}
            time.sleep(1.0)
            out["after_load"] = rss_mb(svc.pid)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    result: dict[str, Any] = {"cases": {}}
    cases = result["cases"]
    cases["empty, lexical"] = _measure(
        service_env(fresh_dir(WORK / "runs" / "mem-empty"), free_port()), args.requests, bodies
    )
    log(f"empty: {cases['empty, lexical']}")
    lexical = datasets.copy_of(datasets.prepared(args.chunks), "mem-lex")
    cases[f"{args.chunks} chunks lexical"] = _measure(
        service_env(lexical, free_port()), args.requests, bodies
    )
    log(f"lexical: {cases[f'{args.chunks} chunks lexical']}")
    dense = datasets.copy_of(datasets.prepared(args.chunks, dense=args.dimension), "mem-dense")
    with fake_openai(dimension=args.dimension) as fake:
        key = f"{args.chunks} chunks dense {args.dimension} + OpenAI (fake)"
        cases[key] = _measure(service_env(dense, free_port(), openai=fake), args.requests, bodies)
        log(f"dense: {cases[key]}")
    datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, case in result["cases"].items():
        start, after = case["after_start"], case.get("after_load", {})
        load = case.get("load", {})
        lines.append(
            f"{name}: RSS after start {start.get('VmRSS')} MB (anon {start.get('RssAnon')}, file "
            f"{start.get('RssFile')}); after {load.get('requests')} /chat ({load.get('errors')} errors) "
            f"{after.get('VmRSS')} MB (anon {after.get('RssAnon')}, file {after.get('RssFile')}), "
            f"peak {after.get('VmHWM')} MB; threads {after.get('threads')}"
        )
    return lines
