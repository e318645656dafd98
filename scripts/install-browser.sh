#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browser tests, when missing.
# Idempotent and quiet: prints nothing when both are already there; exits non-zero
# (with one line on stderr) when they cannot be installed. Needs root (or sudo) and apt-get.
# Usage: scripts/install-browser.sh
set -euo pipefail

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
have && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get here; install chromium and chromium-driver yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "install-browser: need root (or sudo) to apt-get install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A package list can be missing (fresh image) or stale (404 on the .deb): update once, retry.
if ! $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver >"$log" 2>&1; then
  $sudo apt-get update -q >>"$log" 2>&1 || true
  if ! $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "install-browser: apt-get install chromium chromium-driver failed" >&2
    exit 1
  fi
fi
have || { echo "install-browser: chromium still not on PATH after install" >&2; exit 1; }
