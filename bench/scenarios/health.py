"""`/health` next to `/health/live` (the baseline: no dependency, no I/O) in one run,
and next to a bare FastAPI endpoint returning ``{}`` (bench/bare_app.py, the reference
of performance.md) served by its own process on the same machine.

The service runs with its real adapters: embedded index, and PostgreSQL (the local
server on 127.0.0.1:5432, database ``rag_bench``) reached through a loopback proxy
that the scenario later switches to black-hole mode (connections accepted, nothing
ever answered: a hung database). Phases:

1. sweep: /health/live and /health at 1, 50, 200, 500 connections;
2. normal: ``rounds`` x (bare ``{}``, /health/live, /health) at 64 connections, side by side;
3. hung: the proxy black-holes PostgreSQL, then the same rounds again.

Target: /health throughput >= 0.8 x /health/live's, p99 < 10 ms at 64 connections,
also while the dependency hangs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    WORK,
    SwitchableProxy,
    free_port,
    fresh_dir,
    loadgen,
    log,
    median,
    rss_mb,
    running_service,
    service_env,
)

PG = ("127.0.0.1", 5432)
PG_DB = "rag_bench"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=6.0, help="seconds per round and path")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--levels", default="1,50,200,500", help="sweep levels ('' to skip)")
    p.add_argument("--sweep-duration", type=float, default=4.0)
    p.add_argument("--engine", default="raw", choices=["raw", "httpx"])
    p.add_argument("--no-hang", action="store_true", help="skip the hung-database phase")
    p.add_argument("--health-interval", default="2", help="HEALTH_INTERVAL for the service")


def _postgres_ready() -> str | None:
    """Create the bench database if needed; None when PostgreSQL is reachable."""
    try:
        import psycopg2
    except ImportError as exc:
        return f"psycopg2 missing: {exc}"
    try:
        conn = psycopg2.connect(
            host=PG[0], port=PG[1], user="postgres", dbname="postgres", connect_timeout=3
        )
    except Exception as exc:  # any failure: the hang phase is skipped
        return f"PostgreSQL not reachable on {PG[0]}:{PG[1]}: {type(exc).__name__}"
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {PG_DB}")
    finally:
        conn.close()
    return None


def _pair_rounds(base: str, bare: str, args: argparse.Namespace) -> dict[str, Any]:
    rounds = []
    for _ in range(args.rounds):
        reference = loadgen(
            bare, "/", concurrency=args.connections, duration=args.duration, engine=args.engine
        )
        live = loadgen(
            base,
            "/health/live",
            concurrency=args.connections,
            duration=args.duration,
            engine=args.engine,
        )
        health = loadgen(
            base,
            "/health",
            concurrency=args.connections,
            duration=args.duration,
            engine=args.engine,
        )
        ratio = health["throughput_rps"] / live["throughput_rps"] if live["throughput_rps"] else 0.0
        bare_rps = reference["throughput_rps"]
        ratio_bare = health["throughput_rps"] / bare_rps if bare_rps else 0.0
        rounds.append(
            {
                "bare": reference,
                "live": live,
                "health": health,
                "ratio": round(ratio, 3),
                "ratio_bare": round(ratio_bare, 3),
            }
        )
        log(
            f"  bare {bare_rps:.0f} rps p99 {reference['latency_ms'].get('p99')} ms | live {live['throughput_rps']:.0f} rps p99 {live['latency_ms'].get('p99')} ms | "
            f"health {health['throughput_rps']:.0f} rps p99 {health['latency_ms'].get('p99')} ms "
            f"errors {health['errors']} {health['error_kinds']} | ratio {ratio:.2f} (bare {ratio_bare:.2f})"
        )
    return {
        "rounds": rounds,
        "ratio_median": round(median([r["ratio"] for r in rounds]), 3),
        "ratio_bare_median": round(median([r["ratio_bare"] for r in rounds]), 3),
        "bare_rps_median": median([r["bare"]["throughput_rps"] for r in rounds]),
        "bare_p99_median": median(
            [r["bare"]["latency_ms"].get("p99", float("nan")) for r in rounds]
        ),
        "live_rps_median": median([r["live"]["throughput_rps"] for r in rounds]),
        "health_rps_median": median([r["health"]["throughput_rps"] for r in rounds]),
        "live_p99_median": median(
            [r["live"]["latency_ms"].get("p99", float("nan")) for r in rounds]
        ),
        "health_p99_median": median(
            [r["health"]["latency_ms"].get("p99", float("nan")) for r in rounds]
        ),
        "health_p50_median": median(
            [r["health"]["latency_ms"].get("p50", float("nan")) for r in rounds]
        ),
        "health_errors": sum(r["health"]["errors"] for r in rounds),
    }


def _sign_up(base: str) -> str:
    email = f"bench-{int(time.time() * 1000)}@example.com"
    body = {"email": email, "name": "Bench", "password": "bench-password-123"}
    response = httpx.post(base + "/api/auth/sign-up", json=body, timeout=30)
    response.raise_for_status()
    token: str = response.json()["session"]["accessToken"]
    return token


def _signed_in_calls(base: str, token: str, times: int) -> list[dict[str, Any]]:
    """GET /api/chat/sessions and a signed-in POST /chat: status and seconds each."""
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    for _ in range(times):
        for method, path, body in (
            ("GET", "/api/chat/sessions", None),
            ("POST", "/chat", {"query": "What is a ROS 2 topic?"}),
        ):
            started = time.monotonic()
            try:
                r = httpx.request(method, base + path, json=body, headers=headers, timeout=20)
                status: int | str = r.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            seconds = round(time.monotonic() - started, 3)
            out.append({"call": f"{method} {path}", "status": status, "seconds": seconds})
            log(f"  signed-in {method} {path}: {status} in {seconds} s")
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    problem = None if args.no_hang else _postgres_ready()
    data = fresh_dir(WORK / "runs" / "health")
    result: dict[str, Any] = {
        "engine": args.engine,
        "connections": args.connections,
    }
    proxy = SwitchableProxy(PG if problem is None and not args.no_hang else None)
    with proxy:
        extra = {"HEALTH_INTERVAL": args.health_interval}
        if problem is None and not args.no_hang:
            extra["NEON_API_KEY"] = f"postgresql://postgres@127.0.0.1:{proxy.port}/{PG_DB}"
            result["database"] = "postgresql via switchable proxy"
        else:
            result["database"] = f"sqlite ({problem or 'hang phase skipped'})"
        env = service_env(data, free_port(), extra=extra)
        bare_env = service_env(fresh_dir(WORK / "runs" / "bare"), free_port())
        with (
            running_service(env) as svc,
            running_service(bare_env, argv=[PYTHON, "-m", "bench.bare_app"]) as bare,
        ):
            base = svc.base_url
            result["ready_seconds"] = round(svc.extra["ready_seconds"], 2)
            levels = [int(x) for x in args.levels.split(",") if x.strip()]
            sweep = []
            for level in levels:
                for path in ("/health/live", "/health"):
                    r = loadgen(
                        base,
                        path,
                        concurrency=level,
                        duration=args.sweep_duration,
                        engine=args.engine,
                    )
                    sweep.append(r)
                    log(
                        f"sweep {path} c={level}: {r['throughput_rps']:.0f} rps {r['latency_ms']} errors {r['errors']}"
                    )
            result["sweep"] = sweep
            log(f"normal phase: {args.rounds} rounds at {args.connections} connections")
            result["normal"] = _pair_rounds(base, bare.base_url, args)
            result["normal"]["threads"] = rss_mb(svc.pid).get("threads")
            if problem is None and not args.no_hang:
                token = _sign_up(base)
                result["signed_in_before_hang"] = _signed_in_calls(base, token, 1)
                proxy.hang()
                log("PostgreSQL black-holed; waiting 6 s for probes to hit it")
                time.sleep(6)
                snapshot = httpx.get(base + "/health", timeout=5)
                result["hung_health_before"] = {
                    "status": snapshot.status_code,
                    "body": snapshot.json(),
                }
                log(
                    f"hung phase: /health says {snapshot.status_code} {snapshot.json().get('status')}"
                )
                result["hung"] = _pair_rounds(base, bare.base_url, args)
                log("signed-in calls while hung (each bounded to 20 s by the client)")
                result["signed_in_while_hung"] = _signed_in_calls(base, token, 3)
                circuits = httpx.get(base + "/health/circuits", timeout=5).json()
                result["circuits_while_hung"] = circuits
                log(f"circuits while hung: {circuits}")
                after = httpx.get(base + "/health", timeout=5)
                result["hung_health_after"] = {"status": after.status_code, "body": after.json()}
                result["hung"]["threads"] = rss_mb(svc.pid).get("threads")
                result["proxy_connections"] = proxy.connections
            elif problem:
                result["hang_skipped"] = problem
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"engine {result['engine']}, database {result['database']}"]
    for row in result.get("sweep", []):
        lines.append(
            f"sweep {row['url'].rsplit('/', 2)[-1] if row['url'].endswith('live') else 'health'} "
            f"c={row['concurrency']}: {row['throughput_rps']:.0f} rps, p50/p95/p99 "
            f"{row['latency_ms'].get('p50')}/{row['latency_ms'].get('p95')}/{row['latency_ms'].get('p99')} ms, "
            f"errors {row['errors']}"
        )
    for phase in ("normal", "hung"):
        if phase in result:
            ph = result[phase]
            lines.append(
                f"{phase} @{result['connections']}: /health {ph['health_rps_median']:.0f} rps vs "
                f"/health/live {ph['live_rps_median']:.0f} rps -> ratio {ph['ratio_median']:.2f} "
                f"(rounds {[r['ratio'] for r in ph['rounds']]}); /health p50 {ph['health_p50_median']} "
                f"p99 {ph['health_p99_median']} ms; /health/live p99 {ph['live_p99_median']} ms; "
                f"errors {ph['health_errors']}; service threads {ph.get('threads')}"
            )
            if "bare_rps_median" in ph:
                lines.append(
                    f"{phase} @{result['connections']}: bare FastAPI {{}} {ph['bare_rps_median']:.0f} rps, "
                    f"p99 {ph['bare_p99_median']} ms -> /health at {ph['ratio_bare_median']:.2f} x bare"
                )
    for key in ("signed_in_before_hang", "signed_in_while_hung"):
        if key in result:
            calls = ", ".join(f"{c['call']} {c['status']} {c['seconds']} s" for c in result[key])
            lines.append(f"{key.replace('_', ' ')}: {calls}")
    if "circuits_while_hung" in result:
        c = result["circuits_while_hung"]
        lines.append(
            "circuits while hung: "
            + ", ".join(
                f"{name} {v.get('state')} ({v.get('failure_count')}/{v.get('failure_threshold')} failures)"
                for name, v in c.items()
            )
        )
    if "hung_health_after" in result:
        body = result["hung_health_after"]["body"]
        db = body.get("components", {}).get("database", {})
        lines.append(
            f"while hung: /health {result['hung_health_after']['status']} {body.get('status')}, "
            f"database {db.get('status')} ({db.get('error')}, circuit {db.get('circuit_state')})"
        )
    return lines
