#!/usr/bin/env bash
# Idempotent set-up of the public evaluation set and the BM25 baseline:
#   bench/.venv-eval        the baseline's venv (bm25s, PyStemmer), from requirements-baseline.txt
#   debian-faq              the Debian package (apt-get) if its FAQ is not installed
#   bench/.data/debian-faq  docs/ and questions.jsonl built by debian_faq.py
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/bench/.venv-eval"
out="$repo/bench/.data/debian-faq"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import bm25s, Stemmer" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$here/requirements-baseline.txt"
fi

if [[ ! -f /usr/share/doc/debian/FAQ/index.en.html ]]; then
    sudo_cmd=()
    [[ "$(id -u)" -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" apt-get install -y debian-faq
fi

"$venv/bin/python" "$here/debian_faq.py" "$out"
echo "baseline: $venv/bin/python $here/baseline_bm25s.py $out/docs $out/questions.jsonl"
