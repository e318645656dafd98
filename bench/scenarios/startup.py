"""Process start (`rag-backend serve` spawned) to the first 200 from `/health/ready`,
polled every 10 ms, ``--repeats`` times per case:

- embedded defaults, empty DATA_DIR (first start: creates the index, SQLite, keys);
- embedded defaults, the same DATA_DIR again (second start);
- 10k chunks indexed, lexical (no OpenAI key);
- 10k chunks indexed with 1536-d vectors, OpenAI configured (the fake server);
- the textbook in DOCS_PATH, already ingested (start-up re-diffs it);
- PostgreSQL black-holed (NEON_API_KEY to a listener that accepts and never answers).

Also the import time of the app (``python -X importtime``), the largest modules.
Targets: < 3 s empty, < 5 s with 10k chunks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from typing import Any

from bench import datasets
from bench.common import (
    PYTHON,
    ROOT,
    WORK,
    SwitchableProxy,
    clean_env,
    fake_openai,
    free_port,
    fresh_dir,
    log,
    median,
    service_env,
    start_service,
    wait_ready,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chunks", type=int, default=10000)
    p.add_argument("--dimension", type=int, default=1536)


def _time_start(env: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
    started = time.monotonic()
    proc = start_service(env)
    try:
        seconds = wait_ready(proc, timeout=timeout, poll=0.01)
        return {"seconds": round(seconds, 3)}
    except RuntimeError as exc:
        failed_after = round(time.monotonic() - started, 2)
        return {"seconds": None, "failed_after_s": failed_after, "error": str(exc)[-600:]}
    finally:
        proc.stop()


def _case(name: str, make_env: Any, repeats: int, timeout: float = 60.0) -> dict[str, Any]:
    runs = []
    for i in range(repeats):
        runs.append(_time_start(make_env(i), timeout))
        log(f"{name} #{i + 1}: {runs[-1]}")
    ok = [r["seconds"] for r in runs if r["seconds"] is not None]
    return {
        "runs": runs,
        "median_s": median(ok),
        "min_s": min(ok) if ok else None,
        "max_s": max(ok) if ok else None,
        "failures": len(runs) - len(ok),
    }


def _import_time() -> dict[str, Any]:
    done = subprocess.run(
        [
            PYTHON,
            "-X",
            "importtime",
            "-c",
            "import entrypoints.cli, entrypoints.http.app, adapters.qdrant_edge, adapters.openai",
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if found:
            rows.append((int(found[2]), len(found[3]), found[4]))
    top = [r for r in rows if r[1] <= 3]
    total = max((r[0] for r in rows), default=0)
    heavy = sorted(top, key=lambda r: -r[0])[:15]
    return {
        "cumulative_top_ms": [(name, round(us / 1000, 1)) for us, _, name in heavy],
        "largest_ms": round(total / 1000, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"cases": {}}
    cases = result["cases"]
    result["import_time"] = _import_time()
    log(f"import time: {result['import_time']}")

    empties = [fresh_dir(WORK / "runs" / f"startup-empty-{i}") for i in range(args.repeats)]
    cases["empty, first start"] = _case(
        "empty first", lambda i: service_env(empties[i], free_port()), args.repeats
    )
    cases["empty, second start"] = _case(
        "empty second", lambda i: service_env(empties[i], free_port()), args.repeats
    )

    lexical = datasets.prepared(args.chunks)
    copies = [datasets.copy_of(lexical, f"startup-lex-{i}") for i in range(args.repeats)]
    cases[f"{args.chunks} chunks lexical"] = _case(
        "10k lexical", lambda i: service_env(copies[i], free_port()), args.repeats
    )

    dense = datasets.prepared(args.chunks, dense=args.dimension)
    with fake_openai(dimension=args.dimension) as fake:
        dcopies = [datasets.copy_of(dense, f"startup-dense-{i}") for i in range(args.repeats)]
        cases[f"{args.chunks} chunks dense {args.dimension}, OpenAI configured"] = _case(
            "10k dense", lambda i: service_env(dcopies[i], free_port(), openai=fake), args.repeats
        )

    try:
        textbook = datasets.corpus_dir(None)
        tb = datasets.prepared(None)
        tcopies = [datasets.copy_of(tb, f"startup-tb-{i}") for i in range(args.repeats)]
        cases["textbook in DOCS_PATH (unchanged)"] = _case(
            "textbook DOCS_PATH",
            lambda i: service_env(tcopies[i], free_port(), extra={"DOCS_PATH": str(textbook)}),
            args.repeats,
        )
    except FileNotFoundError:
        pass

    with SwitchableProxy(None) as hole:
        data = fresh_dir(WORK / "runs" / "startup-pg-hole")
        url = f"postgresql://postgres@127.0.0.1:{hole.port}/rag"
        cases["PostgreSQL black-holed"] = _case(
            "pg black hole",
            lambda i: service_env(data, free_port(), extra={"NEON_API_KEY": url}),
            1,
            timeout=45,
        )
    datasets.cleanup_runs()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, case in result["cases"].items():
        errors = [
            r.get("error", "")[-160:].replace("\n", " ") for r in case["runs"] if r.get("error")
        ]
        lines.append(
            f"{name}: median {case['median_s']} s (min {case['min_s']}, max {case['max_s']}, "
            f"runs {[r['seconds'] for r in case['runs']]})"
            + (f"; failed: {errors[0]}" if errors else "")
        )
    top = ", ".join(f"{n} {ms} ms" for n, ms in result["import_time"]["cumulative_top_ms"][:8])
    lines.append(f"imports (cumulative, top level): {top}")
    return lines
