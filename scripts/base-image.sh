#!/usr/bin/env bash
# Build a LOCAL stand-in for the official `python:3.11-slim` image and tag it with that name.
#
# Why: the Dockerfile starts `FROM python:3.11-slim`, which Hugging Face pulls from Docker Hub.
# Machines without access to an image registry cannot pull it, so `scripts/image-check.sh`
# builds this stand-in instead: Debian bookworm (the release python:3.11-slim is based on),
# made with debootstrap from Debian's package mirror, plus Debian's python3 (3.11), venv and
# pip, and a `python` command. The Dockerfile is written to work unchanged on both (it builds
# a virtual environment at /opt/venv and copies it to the runtime stage).
#
# The machine's CA bundle: on some machines every TLS connection (pip -> PyPI) goes through a
# re-signing proxy whose certificate authority only the machine itself trusts. The bundle is
# copied from the machine AT BUILD TIME into this local base image only (and pointed to by
# SSL_CERT_FILE and PIP_CERT), so `pip install` inside the application build verifies
# certificates as the host does. It is never written into the repository, never part of the
# application's Dockerfile, and this image is never pushed anywhere: on Hugging Face the real
# python:3.11-slim is used and none of this exists.
#
# Usage: scripts/base-image.sh            (env: BASE_TAG, DEBIAN_MIRROR, CA_BUNDLE)
# Needs: root, a running Docker daemon, debootstrap (installed with apt-get when missing).
set -euo pipefail

BASE_TAG=${BASE_TAG:-python:3.11-slim}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates

if ! command -v debootstrap >/dev/null; then
  echo "base-image: installing debootstrap" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "base-image: no Docker daemon answers" >&2; exit 1; }

rootfs=$(mktemp -d /tmp/python-slim-rootfs.XXXXXX)
chmod 755 "$rootfs" # it becomes the image's /, which uid 1000 must be able to traverse
trap 'rm -rf "$rootfs"' EXIT

start=$(date +%s)
echo "base-image: debootstrap bookworm ($DEBIAN_MIRROR) into $rootfs" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$DEBIAN_MIRROR" \
  >"$rootfs.log" 2>&1 || { tail -30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# Trim what a slim image does not carry.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true

# The machine's CA bundle, taken now (see the header); only when it exists.
cert_env=()
if [[ -r "$CA_BUNDLE" ]]; then
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/build-machine-ca-bundle.crt"
  cert_env=(
    --change "ENV SSL_CERT_FILE=/etc/ssl/certs/build-machine-ca-bundle.crt"
    --change "ENV PIP_CERT=/etc/ssl/certs/build-machine-ca-bundle.crt"
  )
fi

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  "${cert_env[@]}" \
  --change 'LABEL org.opencontainers.image.description="LOCAL stand-in for python:3.11-slim (debootstrap bookworm + Debian python3); never push"' \
  --change 'CMD ["python3"]' \
  - "$BASE_TAG" >/dev/null

version=$(docker run --rm --network host "$BASE_TAG" python --version 2>&1)
echo "base-image: tagged $BASE_TAG ($version) in $(($(date +%s) - start)) s" >&2
