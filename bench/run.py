"""One command per scenario::

    .venv/bin/python -m bench.run health     # /health vs /health/live, also with PostgreSQL hung
    .venv/bin/python -m bench.run chat       # /chat overhead (1, 50) and concurrency (200, 500)
    .venv/bin/python -m bench.run stream     # /chat/stream first byte / first token
    .venv/bin/python -m bench.run ingest     # CLI ingest: textbook, 10k, 100k chunks; re-ingest
    .venv/bin/python -m bench.run search     # EdgeIndex and lexical /chat at 1k / 10k / 100k
    .venv/bin/python -m bench.run startup    # process start to /health/ready
    .venv/bin/python -m bench.run memory     # resident memory, empty and 10k chunks
    .venv/bin/python -m bench.run hostile    # huge bodies and heads, slow clients, forged XFF
    .venv/bin/python -m bench.run hung_model # /chat with the model black-holed: deadlines, circuit
    .venv/bin/python -m bench.run topology   # /chat at 1, 2 workers x 50/200/500 users, LlamaIndex peer
    .venv/bin/python -m bench.run all        # all of the above, in that order

Each prints a summary and writes bench/results/<scenario>-<time>.json (with the date,
commit and machine). ``--help`` after a scenario lists its knobs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any

from bench.common import log, machine, save

SCENARIOS = (
    "health",
    "chat",
    "stream",
    "ingest",
    "search",
    "startup",
    "memory",
    "hostile",
    "hung_model",
    "topology",
)


def _module(name: str) -> Any:
    return importlib.import_module(f"bench.scenarios.{name}")


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    module = _module(name)
    started = time.monotonic()
    log(f"scenario {name}")
    payload = {"scenario": name, "machine": machine(), "args": vars(args)}
    payload["result"] = module.run(args)
    payload["seconds"] = round(time.monotonic() - started, 1)
    save(name, payload)
    print(f"\n## {name} ({payload['machine']['date']}, {payload['machine']['commit']})")
    for line in module.summary(payload["result"]):
        print(f"- {line}")
    sys.stdout.flush()
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="scenario", required=True)
    for name in SCENARIOS:
        sub = commands.add_parser(name, help=(_module(name).__doc__ or "").strip().splitlines()[0])
        _module(name).add_arguments(sub)
    everything = commands.add_parser("all", help="every scenario with its defaults")
    everything.add_argument("--skip", default="", help="comma-separated scenarios to skip")
    summary = commands.add_parser("summary", help="print the summary of a saved result file")
    summary.add_argument("path")
    args = parser.parse_args(argv)
    if args.scenario == "summary":
        with open(args.path) as handle:
            payload = json.load(handle)
        for line in _module(payload["scenario"]).summary(payload["result"]):
            print(f"- {line}")
        return 0
    if args.scenario == "all":
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        for name in SCENARIOS:
            if name in skip:
                continue
            sub = argparse.ArgumentParser()
            _module(name).add_arguments(sub)
            run_one(name, sub.parse_args([]))
        return 0
    run_one(args.scenario, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
