"""`POST /chat` with the fake OpenAI server: overhead and concurrency.

The index holds a generated corpus (default 10k chunks) embedded by the fake server
(dimension 1536, as text-embedding-3-small). Anonymous questions, 64 of them in
rotation. Two parts, each with its own fake server and service process:

- overhead: upstream = query embedding + chat first byte (default 0.05 + 0.25 s) at
  concurrency 1 and 50; overhead = latency - upstream. The fake's own cost (its
  handler threads, JSON, vectors) is measured first by the same load generator
  calling it directly, so it can be told apart from the service's.
- concurrency: 1.5 s of upstream (0.1 + 1.4 s) at 200 and 500 users.

Targets: p95 overhead < 50 ms at 50 users; at 200 users zero errors and
p95 < 1.3 x 1.5 s; at 500 users zero errors.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import corpus, datasets
from bench.common import (
    WORK,
    Sampler,
    fake_openai,
    free_port,
    loadgen,
    log,
    profiled,
    rss_mb,
    running_service,
    service_env,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunks", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--levels", default="1,50")
    p.add_argument("--embedding-latency", type=float, default=0.05)
    p.add_argument("--first-byte-latency", type=float, default=0.25)
    p.add_argument("--heavy-levels", default="200,500")
    p.add_argument("--heavy-duration", type=float, default=20.0)
    p.add_argument("--heavy-embedding-latency", type=float, default=0.1)
    p.add_argument("--heavy-first-byte-latency", type=float, default=1.4)
    p.add_argument("--no-calibrate", action="store_true")


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def calibrate_fake(fake_url: str, levels: list[int], duration: float) -> list[dict[str, Any]]:
    """The fake's own time: the load generator calls its chat endpoint directly with a
    prompt the size of the service's (its injected first-byte latency is subtracted)."""
    body = corpus.fake_chat_body()
    out = []
    for level in levels:
        r = loadgen(
            fake_url.rsplit("/v1", 1)[0],
            "/v1/chat/completions",
            method="POST",
            body=body,
            concurrency=level,
            duration=min(duration, 8),
            warmup=1,
        )
        out.append(r)
        log(f"fake alone c={level}: {r['throughput_rps']} rps, latency {r['latency_ms']}")
    return out


def _chat_levels(
    base: str,
    pid: int,
    levels: list[int],
    duration: float,
    injected: float,
    bodies: Any,
    fake_pid: int,
) -> list[dict[str, Any]]:
    rows = []
    for level in levels:
        with (
            Sampler(pid) as sampler,
            Sampler(fake_pid) as fake_sampler,
            profiled(pid, f"chat-c{level}") as profile,
        ):
            r = loadgen(
                base,
                "/chat",
                method="POST",
                bodies_file=bodies,
                concurrency=level,
                duration=duration,
                injected=injected,
                warmup=2,
                timeout=60,
            )
        r.update(sampler.summary())
        r["fake_cpu_percent"] = fake_sampler.summary()["service_cpu_percent"]
        if profile is not None:
            r["profile"] = str(profile)
        rows.append(r)
        log(
            f"/chat c={level}: {r['throughput_rps']} rps, latency {r['latency_ms']}, overhead "
            f"{r.get('overhead_ms')}, errors {r['errors']} {r['error_kinds']}, modes {r['modes']}, "
            f"cpu {r['service_cpu_percent']}%"
        )
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    prepared = datasets.prepared(args.chunks, dense=args.dimension)
    result: dict[str, Any] = {
        "chunks": args.chunks,
        "dimension": args.dimension,
        "prepared": json.loads((prepared.parent / f"{prepared.name}.json").read_text()),
    }
    parts = [
        (
            "overhead",
            args.embedding_latency,
            args.first_byte_latency,
            _levels(args.levels),
            args.duration,
        ),
        (
            "concurrency",
            args.heavy_embedding_latency,
            args.heavy_first_byte_latency,
            _levels(args.heavy_levels),
            args.heavy_duration,
        ),
    ]
    for name, emb, first, levels, duration in parts:
        if not levels:
            continue
        injected = emb + first
        with fake_openai(
            embedding_latency=emb, first_byte_latency=first, dimension=args.dimension
        ) as fake:
            part: dict[str, Any] = {
                "embedding_latency": emb,
                "first_byte_latency": first,
                "injected_s": injected,
            }
            if name == "overhead" and not args.no_calibrate:
                part["fake_alone"] = calibrate_fake(fake.base_url, levels, duration)
            data = datasets.copy_of(prepared, f"chat-{name}")
            env = service_env(data, free_port(), openai=fake)
            with running_service(env) as svc:
                part["ready_seconds"] = round(svc.extra["ready_seconds"], 2)
                part["levels"] = _chat_levels(
                    svc.base_url, svc.pid, levels, duration, injected, bodies, fake.pid
                )
                part["rss_after"] = rss_mb(svc.pid)
            result[name] = part
    datasets.cleanup_runs()
    return result


def _cpu_ms(r: dict[str, Any]) -> str:
    rps = r.get("throughput_rps") or 0
    return f"{r['service_cpu_percent'] * 10 / rps:.1f}" if rps else "-"


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['chunks']} chunks, dimension {result['dimension']}"]
    for name in ("overhead", "concurrency"):
        part = result.get(name)
        if not part:
            continue
        lines.append(
            f"{name}: injected upstream {part['injected_s']:.2f} s "
            f"(embedding {part['embedding_latency']} + first byte {part['first_byte_latency']})"
        )
        for r in part.get("fake_alone", []):
            lines.append(
                f"  fake alone c={r['concurrency']}: latency p50/p95 {r['latency_ms'].get('p50')}/"
                f"{r['latency_ms'].get('p95')} ms (injected first byte {part['first_byte_latency'] * 1000:.0f} ms)"
            )
        for r in part.get("levels", []):
            lat, ovh = r["latency_ms"], r.get("overhead_ms", {})
            lines.append(
                f"  c={r['concurrency']}: {r['throughput_rps']} rps, latency p50/p95/p99 "
                f"{lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms, overhead p50/p95/p99 "
                f"{ovh.get('p50')}/{ovh.get('p95')}/{ovh.get('p99')} ms, errors {r['errors']} "
                f"{r['error_kinds'] or ''}, modes {r['modes']}, CPU service {r['service_cpu_percent']}% / fake "
                f"{r.get('fake_cpu_percent')}% / loadgen {r.get('loadgen_cpu_percent')}% "
                f"({_cpu_ms(r)} ms service CPU per request), "
                f"RSS peak {r['service_rss_peak_mb']} MB, threads {r['service_threads_max']}"
            )
    return lines
