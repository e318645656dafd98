"""`POST /chat/stream` (Server-Sent Events) with the fake OpenAI server.

Upstream: query embedding (default 0.05 s), then the chat stream's first byte
(0.25 s), then one content token every ``token_delay`` (0.02 s) -- the fake sends the
role chunk at first byte and sleeps ``token_delay`` before each content token, so
the upstream's first token arrives at embedding + first byte + token_delay.

Measured per request: time to first byte (the ``sources`` event, sent before the
model is called), time to the first ``delta`` event (the first token relayed), and
overhead = first delta - upstream first token. Target: within 30 ms.
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
    running_service,
    service_env,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunks", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)
    p.add_argument("--levels", default="1,50,200,500")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--embedding-latency", type=float, default=0.05)
    p.add_argument("--first-byte-latency", type=float, default=0.25)
    p.add_argument("--token-delay", type=float, default=0.02)


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = corpus.write_bodies(WORK / "queries.jsonl")
    prepared = datasets.prepared(args.chunks, dense=args.dimension)
    first_token = args.embedding_latency + args.first_byte_latency + args.token_delay
    result: dict[str, Any] = {
        "chunks": args.chunks,
        "dimension": args.dimension,
        "embedding_latency": args.embedding_latency,
        "first_byte_latency": args.first_byte_latency,
        "token_delay": args.token_delay,
        "injected_first_token_s": round(first_token, 3),
        "prepared": json.loads((prepared.parent / f"{prepared.name}.json").read_text()),
        "levels": [],
    }
    with fake_openai(
        embedding_latency=args.embedding_latency,
        first_byte_latency=args.first_byte_latency,
        token_delay=args.token_delay,
        dimension=args.dimension,
    ) as fake:
        data = datasets.copy_of(prepared, "stream")
        env = service_env(data, free_port(), openai=fake)
        with running_service(env) as svc:
            for level in [int(x) for x in args.levels.split(",") if x.strip()]:
                with (
                    Sampler(svc.pid) as sampler,
                    Sampler(fake.pid) as fake_sampler,
                    profiled(svc.pid, f"stream-c{level}") as profile,
                ):
                    r = loadgen(
                        svc.base_url,
                        "/chat/stream",
                        method="POST",
                        bodies_file=bodies,
                        stream=True,
                        concurrency=level,
                        duration=args.duration,
                        warmup=2,
                        injected_first_token=first_token,
                        timeout=60,
                    )
                r.update(sampler.summary())
                r["fake_cpu_percent"] = fake_sampler.summary()["service_cpu_percent"]
                if profile is not None:
                    r["profile"] = str(profile)
                result["levels"].append(r)
                log(
                    f"/chat/stream c={level}: {r['throughput_rps']} rps, ttfb {r['ttfb_ms']}, first delta "
                    f"{r['first_delta_ms']}, overhead {r.get('first_delta_overhead_ms')}, total {r['latency_ms']}, "
                    f"errors {r['errors']} {r['error_kinds']}, modes {r['modes']}"
                )
    datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['chunks']} chunks; upstream first token at {result['injected_first_token_s'] * 1000:.0f} ms "
        f"(embedding {result['embedding_latency']} + first byte {result['first_byte_latency']} + "
        f"token {result['token_delay']} s)"
    ]
    for r in result["levels"]:
        ttfb, fd, ovh, lat = (
            r["ttfb_ms"],
            r["first_delta_ms"],
            r.get("first_delta_overhead_ms", {}),
            r["latency_ms"],
        )
        lines.append(
            f"c={r['concurrency']}: {r['throughput_rps']} streams/s; first byte p50/p95 {ttfb.get('p50')}/{ttfb.get('p95')} ms; "
            f"first delta p50/p95/p99 {fd.get('p50')}/{fd.get('p95')}/{fd.get('p99')} ms -> overhead "
            f"{ovh.get('p50')}/{ovh.get('p95')}/{ovh.get('p99')} ms; whole stream p50/p95 {lat.get('p50')}/{lat.get('p95')} ms; "
            f"errors {r['errors']} {r['error_kinds'] or ''}; CPU service {r['service_cpu_percent']}% / fake "
            f"{r.get('fake_cpu_percent')}% / loadgen {r.get('loadgen_cpu_percent')}% "
            f"({_cpu_ms(r)} ms service CPU per stream)"
        )
    return lines


def _cpu_ms(r: dict[str, Any]) -> str:
    rps = r.get("throughput_rps") or 0
    return f"{r['service_cpu_percent'] * 10 / rps:.1f}" if rps else "-"
