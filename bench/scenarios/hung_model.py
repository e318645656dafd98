"""POST /chat with a model server that accepts connections and never answers.

The fake OpenAI server (chat and embeddings) sits behind a loopback proxy that is
switched to black-hole mode after a warm-up (new connections are accepted and never
answered, pooled ones stop forwarding). The service runs with its default deadlines
and breaker settings. Two parts, each with its own service:

- sequential: one question at a time; each answer's latency, mode and ``degraded``,
  the openai circuit after each, and how long until /health shows the probe failing;
- concurrent: ``--users`` closed-loop users from the moment of the hang for
  ``--duration`` seconds (longer than the 30 s recovery, so half-open trials happen).

Acceptance (issue 14): extractive, degraded answers within 10 s at p95; the circuit
open within 3 requests.
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import corpus, datasets
from bench.common import (
    WORK,
    SwitchableProxy,
    fake_openai,
    free_port,
    loadgen,
    log,
    pct,
    running_service,
    service_env,
)

QUESTION = {"query": "How do ROS 2 nodes communicate over topics?"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunks", type=int, default=1000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--requests", type=int, default=20, help="sequential questions while hung")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--duration", type=float, default=45.0)
    p.add_argument("--health-wait", type=float, default=30.0)


def _hung_service(
    fake_url: str, prepared: Any, label: str
) -> tuple[SwitchableProxy, dict[str, str]]:
    fake = urlsplit(fake_url)
    proxy = SwitchableProxy((fake.hostname or "127.0.0.1", fake.port or 80))
    data = datasets.copy_of(prepared, label)
    env = service_env(data, free_port())
    env.update(
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=f"http://127.0.0.1:{proxy.port}/v1",
        OPENAI_EMBEDDING_DIMENSION="1536",
    )
    return proxy, env


def _sequential(
    base: str, proxy: SwitchableProxy, requests: int, health_wait: float
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=base, timeout=600) as client:
        warm = [client.post("/chat", json=QUESTION).json()["mode"] for _ in range(3)]
        proxy.hang()
        hung_at = time.monotonic()
        for n in range(1, requests + 1):
            started = time.monotonic()
            response = client.post("/chat", json=QUESTION)
            seconds = time.monotonic() - started
            body = response.json()
            state = client.get("/health/circuits").json()["openai"]["state"]
            rows.append(
                {
                    "n": n,
                    "seconds": round(seconds, 3),
                    "status": response.status_code,
                    "mode": body.get("mode"),
                    "degraded": body.get("degraded"),
                    "circuit": state,
                }
            )
            log(
                f"hung /chat #{n}: {seconds:.2f} s {body.get('mode')} {body.get('degraded')} circuit {state}"
            )
        probe: dict[str, Any] = {}
        deadline = time.monotonic() + health_wait
        while time.monotonic() < deadline:
            health = client.get("/health").json()
            openai = health["components"]["openai"]
            if openai.get("error"):
                probe = {
                    "after_hang_s": round(time.monotonic() - hung_at, 1),
                    "status": health["status"],
                    "openai": openai,
                }
                break
            time.sleep(0.5)
    latencies = [r["seconds"] for r in rows]
    opened = next((r["n"] for r in rows if r["circuit"] == "open"), None)
    return {
        "warm_modes": warm,
        "rows": rows,
        "p50_s": round(pct(latencies, 50), 3),
        "p95_s": round(pct(latencies, 95), 3),
        "max_s": round(max(latencies), 3),
        "open_after_requests": opened,
        "health_probe": probe,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    prepared = datasets.prepared(args.chunks, dense=args.dimension)
    result: dict[str, Any] = {"chunks": args.chunks}
    with fake_openai(
        embedding_latency=0.05, first_byte_latency=0.25, dimension=args.dimension
    ) as fake:
        proxy, env = _hung_service(fake.base_url, prepared, "hung-sequential")
        with proxy, running_service(env) as svc:
            result["sequential"] = _sequential(svc.base_url, proxy, args.requests, args.health_wait)
        proxy, env = _hung_service(fake.base_url, prepared, "hung-concurrent")
        with proxy, running_service(env) as svc:
            with httpx.Client(base_url=svc.base_url, timeout=60) as client:
                client.post("/chat", json=QUESTION)
            proxy.hang()
            r = loadgen(
                svc.base_url,
                "/chat",
                method="POST",
                bodies_file=bodies,
                concurrency=args.users,
                duration=args.duration,
                warmup=0,
                timeout=600,
            )
            with httpx.Client(base_url=svc.base_url, timeout=10) as client:
                r["circuit_after"] = client.get("/health/circuits").json()["openai"]
            result["concurrent"] = r
            log(
                f"hung /chat c={args.users}: latency {r['latency_ms']}, modes {r['modes']}, errors {r['errors']}"
            )
    datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['chunks']} chunks, model black-holed after a warm-up"]
    seq = result.get("sequential")
    if seq:
        modes = sorted({f"{r['mode']} {r['degraded']}" for r in seq["rows"]})
        lines.append(
            f"sequential {len(seq['rows'])} questions: p50/p95/max {seq['p50_s']}/{seq['p95_s']}/"
            f"{seq['max_s']} s, first three {[r['seconds'] for r in seq['rows'][:3]]} s, answers "
            f"{modes}, circuit open after request {seq['open_after_requests']}"
        )
        probe = seq.get("health_probe") or {}
        if probe:
            lines.append(
                f"/health: {probe['status']}, openai {probe['openai']['status']} "
                f"({probe['openai']['error']}, probe {probe['openai']['latency_ms']} ms) "
                f"{probe['after_hang_s']} s after the hang"
            )
    r = result.get("concurrent")
    if r:
        lat = r["latency_ms"]
        lines.append(
            f"concurrent {r['concurrency']} users: {r['throughput_rps']} rps, latency p50/p95/p99/max "
            f"{lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')}/{lat.get('max')} ms, modes {r['modes']}, "
            f"errors {r['errors']} {r['error_kinds'] or ''}, circuit after: {r['circuit_after']['state']}"
        )
    return lines
