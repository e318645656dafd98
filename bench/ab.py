"""Service CPU per request, this tree against another one, back to back.

    python -m bench.ab --base /tmp/base/src --rounds 3 chat --levels 50 --heavy-levels "" --no-calibrate
    python -m bench.ab --base /tmp/base/src --rounds 3 stream --levels 50

Runs the scenario (``python -m bench.run SCENARIO ARGS``) alternately with the service
from ``--base`` (``BENCH_SERVICE_SRC``) and from this tree, ``--rounds`` times each,
and prints per run and level the service's CPU per request (CPU seconds / requests
completed: less sensitive to a shared machine than throughput), the throughput and
the 1-minute load average at the end of the level; then the medians. Result files
are the scenario's own (bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from typing import Any

from bench.common import ROOT, SERVICE_SRC


def _levels(payload: dict[str, Any]) -> list[dict[str, Any]]:
    result = payload["result"]
    if "levels" in result:
        return list(result["levels"])
    return [
        r for part in ("overhead", "concurrency") for r in result.get(part, {}).get("levels", [])
    ]


def _run(scenario: list[str], base: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop(SERVICE_SRC, None)
    if base:
        env[SERVICE_SRC] = base
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", *scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"results written to (\S+\.json)", done.stdout + done.stderr)
    if found is None:
        raise RuntimeError(f"no result file in the output:\n{done.stdout[-2000:]}")
    payload: dict[str, Any] = json.loads((ROOT / found[1]).read_text())
    payload["file"] = found[1]
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the other tree's src folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("scenario", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    figures: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.rounds):
        for name, base in (("base", args.base), ("this", None)):
            payload = _run(args.scenario, base)
            for r in _levels(payload):
                rps = r.get("throughput_rps") or 0
                cpu = r["service_cpu_percent"] * 10 / rps if rps else float("nan")
                figures.setdefault((name, r["concurrency"]), []).append(cpu)
                print(
                    f"round {round_ + 1} {name:4} c={r['concurrency']}: {cpu:.2f} ms CPU per "
                    f"request, {rps} req/s, errors {r['errors']}, load {r.get('loadavg_1m_after')} "
                    f"({payload['file']}, {payload['machine']['commit']})",
                    flush=True,
                )
    for (name, level), values in sorted(figures.items()):
        print(f"median {name} c={level}: {statistics.median(values):.2f} ms ({len(values)} runs)")


if __name__ == "__main__":
    main()
