#!/usr/bin/env bash
# Idempotent set-up of the LlamaIndex peer's venv for `bench/run.sh topology`:
#   bench/.work/peer-venv   from bench/peer/requirements.txt (git-ignored, never the project's venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/bench/.work/peer-venv"

[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
# pip leaves what already satisfies the pins alone: quick on a second run.
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -c "import llama_index.core, llama_index.llms.openai, llama_index.embeddings.openai, fastapi, uvicorn"
echo "peer venv ready: $venv/bin/python $here/app.py"
