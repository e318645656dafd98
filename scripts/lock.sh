#!/usr/bin/env bash
# Regenerate requirements.lock: every runtime dependency of pyproject.toml (no dev extras),
# pinned with hashes, resolved for the image's platform (CPython 3.11, x86_64 Linux).
#
#   scripts/lock.sh              add what pyproject.toml gained, keep the other pins
#   scripts/lock.sh --upgrade    move every pin to the newest allowed release
#
# Run it after any change to [project].dependencies; tests/test_deployment.py fails while the
# lock misses a dependency or pins a version the specifier excludes. uv is installed into a
# throwaway venv under /tmp (never into the project's .venv); set UV=/path/to/uv to use another.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${UV:-}" ]]; then
  tools=${LOCK_TOOLS_VENV:-/tmp/rag-backend-locktools}
  if [[ ! -x "$tools/bin/uv" ]]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet uv
  fi
  UV="$tools/bin/uv"
fi

"$UV" pip compile pyproject.toml \
  --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu \
  --generate-hashes \
  --no-strip-markers \
  --custom-compile-command "scripts/lock.sh" \
  --output-file requirements.lock \
  --quiet \
  "$@"
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) pinned packages"
