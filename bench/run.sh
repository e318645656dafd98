#!/bin/sh
# One command per scenario: bench/run.sh health|chat|stream|ingest|search|startup|memory|all [options]
# (the same as .venv/bin/python -m bench.run ...; run from anywhere).
cd "$(dirname "$0")/.." || exit 1
exec "${PYTHON:-.venv/bin/python}" -m bench.run "$@"
