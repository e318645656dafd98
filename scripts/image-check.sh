#!/usr/bin/env bash
# Build the Docker image and check it the way Hugging Face Spaces will run it.
#
# Heavy (package installs, a Debian bootstrap, a full image build): NOT part of `make test`.
# Run it by hand or in a CI job of its own, as root:
#
#   scripts/image-check.sh     (env: IMAGE, CHECK_DIR, STOP_TIMEOUT, KEEP_DAEMON=1,
#                               STORAGE_DRIVER=overlay2|vfs, DATA_ROOT)
#
# What it does:
#   1. makes a Docker engine available: Debian's docker.io when dockerd is missing; starts
#      dockerd (overlay2 storage, else vfs; no iptables, no bridge) when none answers, and
#      stops it at the end (KEEP_DAEMON=1 leaves it running);
#   2. builds a local stand-in for python:3.11-slim when that image is absent
#      (scripts/base-image.sh: no image registry is needed);
#   3. builds the image with `docker build --network host` and reports its size and build time;
#   4. runs it once with embedded defaults and no secrets on a free port (--network host), and
#      checks: it runs as uid 1000; /health/live answers 200; Docker's own HEALTHCHECK turns
#      healthy; the image carries no tests, no compiler, no dev tools; `docker stop` (SIGTERM)
#      ends it cleanly (exit 0 or 143, uvicorn's "Application shutdown complete" logged) within
#      the stop timeout; and production mode without secrets refuses to start, naming them;
#   5. prints a results block (also written to $CHECK_DIR/results.txt); exit 1 if a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-rag-backend:check}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
# Only used when this script starts dockerd: overlay2 first (fast), then vfs, which works
# everywhere but copies every layer in full (a build takes minutes instead of seconds).
STORAGE_DRIVERS=${STORAGE_DRIVER:-overlay2 vfs}
DATA_ROOT=${DATA_ROOT:-/var/lib/docker}
CHECK_DIR=${CHECK_DIR:-$(mktemp -d /tmp/image-check.XXXXXX)}
mkdir -p "$CHECK_DIR"
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} # the legacy builder needs no buildx plugin

results=()
failed=0
record() { # record NAME VALUE [ok|FAIL]
  local line
  line=$(printf '%-22s %s' "$1" "$2")
  [[ "${3:-}" == FAIL ]] && { line="$line   <-- FAIL"; failed=1; }
  results+=("$line")
  echo "image-check: $1: $2${3:+ ($3)}" >&2
}

# ---- 5. results (also called early when a step cannot go on) ---------------------------------
finish() {
  {
    echo "==== image-check results ($(date -u +%Y-%m-%dT%H:%MZ), image $IMAGE) ===="
    printf '%s\n' "${results[@]}"
    echo "docker: client $(docker version -f '{{.Client.Version}}'), engine $(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}')"
    echo "logs: $CHECK_DIR"
    if [[ $failed == 0 ]]; then echo "RESULT: all checks passed"; else echo "RESULT: FAILED"; fi
  } | tee "$CHECK_DIR/results.txt"
  exit "$failed"
}

# ---- 1. a Docker engine -----------------------------------------------------------------------
dockerd_pid=""
if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
  if ! docker info >/dev/null 2>&1; then
    echo "image-check: installing Debian's docker.io" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
  fi
fi
if ! docker info >/dev/null 2>&1; then
  for driver in $STORAGE_DRIVERS; do
    echo "image-check: starting dockerd, storage $driver (log: $CHECK_DIR/dockerd-$driver.log)" >&2
    dockerd --storage-driver "$driver" --data-root "$DATA_ROOT" --iptables=false \
      --bridge=none >"$CHECK_DIR/dockerd-$driver.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 1
    done
    docker info >/dev/null 2>&1 && break
    tail -5 "$CHECK_DIR/dockerd-$driver.log" >&2
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    dockerd_pid=""
  done
  docker info >/dev/null 2>&1 || { echo "image-check: no Docker engine could start" >&2; exit 1; }
fi

container=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n "$container" ]]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  if [[ -n "$dockerd_pid" && -z "${KEEP_DAEMON:-}" ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# ---- 2. the base image ------------------------------------------------------------------------
if docker image inspect python:3.11-slim >/dev/null 2>&1; then
  base="python:3.11-slim (present)"
else
  scripts/base-image.sh
  base="python:3.11-slim (built by scripts/base-image.sh)"
fi
if docker image inspect -f '{{json .Config.Labels}}' python:3.11-slim | grep -q 'LOCAL stand-in'; then
  base="$base: LOCAL stand-in, $(docker run --rm python:3.11-slim python --version 2>&1)"
fi
record "base image" "$base"

# ---- 3. build ---------------------------------------------------------------------------------
start=$(date +%s)
if ! docker build --network host -t "$IMAGE" . >"$CHECK_DIR/build.log" 2>&1; then
  tail -40 "$CHECK_DIR/build.log" >&2
  record "build" "failed (log: $CHECK_DIR/build.log)" FAIL
  finish
fi
record "build time" "$(($(date +%s) - start)) s (docker build --network host, $(nproc) CPUs)"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
record "image size" "$((size / 1000000)) MB ($size bytes, uncompressed)"
venv_size=$(docker run --rm --entrypoint du "$IMAGE" -sm /opt/venv | cut -f1 || echo "?")
record "venv size" "${venv_size} MiB (/opt/venv)"

# ---- 4. run it --------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if ! container=$(docker run -d --network host -e PORT="$port" --health-interval 2s \
  --health-start-period 5s --name "rag-backend-check-$$" "$IMAGE"); then
  container=""
  record "run" "docker run failed" FAIL
  finish
fi
start=$(date +%s%N)
code=000
for _ in $(seq 120); do
  code=$(python3 - "$port" <<'PY' 2>/dev/null || true
import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health/live", timeout=2).status)
except Exception:
    print("000")
PY
)
  [[ "$code" == 200 ]] && break
  [[ "$(docker inspect -f '{{.State.Running}}' "$container")" == true ]] || break
  sleep 0.5
done
ready_ms=$((($(date +%s%N) - start) / 1000000))
if [[ "$code" == 200 ]]; then
  record "/health/live" "200 after ${ready_ms} ms (port $port, embedded defaults, no secrets)"
else
  record "/health/live" "$code (container running: $(docker inspect -f '{{.State.Running}}' "$container"))" FAIL
  docker logs --tail 40 "$container" >&2 || true
fi

uid=$(docker exec "$container" id -u 2>/dev/null || echo "?")
pid1=$(docker exec "$container" sh -c 'id -u; cat /proc/1/status | grep -E "^Uid" | cut -f2' 2>/dev/null | tail -1 || echo "?")
user=$(docker inspect -f '{{.Config.User}}' "$IMAGE")
[[ "$uid" == 1000 && "$pid1" == 1000 ]] && ok=ok || ok=FAIL
record "uid" "exec $uid, PID 1 $pid1 (USER $user)" "$ok"

health=starting
for _ in $(seq 30); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$container")
  [[ "$health" == starting ]] || break
  sleep 1
done
[[ "$health" == healthy ]] && ok=ok || ok=FAIL
record "docker HEALTHCHECK" "$health" "$ok"

contents=$(docker exec "$container" sh -c '
  for tool in gcc cc g++ make git curl; do command -v "$tool" >/dev/null && printf "%s " "$tool"; done
  ls /opt/venv/lib/python3.11/site-packages | grep -i -E "^(tests?|pytest|ruff|mypy|hadolint|pip|setuptools)([-_.]|$)" | tr "\n" " "
  [ -e /build ] && printf "/build "; true')
if [[ -z "$contents" ]]; then
  record "contents" "no tests, compiler, git, curl, pip or dev tools" ok
else
  record "contents" "found: $contents" FAIL
fi

start=$(date +%s%N)
docker stop -t "$STOP_TIMEOUT" "$container" >/dev/null
stop_ms=$((($(date +%s%N) - start) / 1000000))
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
docker logs "$container" >"$CHECK_DIR/run.log" 2>&1
if grep -q "Application shutdown complete" "$CHECK_DIR/run.log" && [[ "$exit_code" == 0 || "$exit_code" == 143 ]] \
  && ((stop_ms < STOP_TIMEOUT * 1000)); then
  ok=ok
else
  ok=FAIL
fi
record "SIGTERM (docker stop)" "exit $exit_code after ${stop_ms} ms (timeout ${STOP_TIMEOUT} s); shutdown logged: $(grep -c 'Application shutdown complete' "$CHECK_DIR/run.log")" "$ok"
docker rm "$container" >/dev/null
container=""

set +e
refusal=$(docker run --rm --network host -e APP_ENV=production -e PORT="$port" "$IMAGE" 2>&1)
refusal_code=$?
set -e
echo "$refusal" >"$CHECK_DIR/production-refusal.log"
if [[ "$refusal_code" != 0 ]] && grep -q OPENAI_API_KEY <<<"$refusal" && grep -q QDRANT_URL <<<"$refusal"; then
  record "production, no secrets" "refused, exit $refusal_code: $(grep -m1 -o 'needs: .*' <<<"$refusal" | cut -c1-110)" ok
else
  record "production, no secrets" "exit $refusal_code: $(tail -1 <<<"$refusal" | cut -c1-110)" FAIL
fi

finish
