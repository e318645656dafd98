# rag-backend as ONE container, e.g. a Hugging Face Space (Docker SDK): docs/deploy-huggingface.md.
# Configuration comes only from environment variables at run time (the Space's secrets and
# variables, docs/configuration.md); the image holds no secret and needs no build argument.
#
#   docker build -t rag-backend .
#   docker run --rm -p 7860:7860 rag-backend          # embedded defaults, no keys
#
# Dependencies come from requirements.lock (pinned, hash-checked; regenerate: scripts/lock.sh).
# scripts/image-check.sh builds and checks this image (uid, health, SIGTERM shutdown).

# ---- builder: a virtual environment holding the locked dependencies and the app -------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A venv works the same on the official image and on Debian's python3 (no system pip).
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build

# Dependencies first, so editing the source does not invalidate this layer.
# --require-hashes: every file must match the lock; --no-deps: nothing outside the lock.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

# The app itself: a regular (non-editable) install of src/ only; tests never enter the image.
# Then pip and setuptools leave the venv: the runtime installs nothing (about 25 MB less).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps ./ \
    && python -m pip uninstall --yes pip setuptools

# ---- runtime: the same base, the venv, an unprivileged user -----------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="rag-backend" \
      org.opencontainers.image.description="Retrieval-augmented chatbot backend for documentation sites" \
      org.opencontainers.image.licenses="MIT"

# Spaces run the container as uid 1000; the home folder is the only writable place we need.
RUN useradd --create-home --uid 1000 user

# The venv stays owned by root: the service cannot rewrite its own code. Nothing here needs
# chown (DATA_DIR is created at run time inside the user's home).
COPY --from=builder /opt/venv /opt/venv

USER 1000
WORKDIR /home/user

ENV HOME=/home/user \
    PATH=/opt/venv/bin:/home/user/.local/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=7860 \
    DATA_DIR=/home/user/data

EXPOSE 7860

# Liveness only (no dependency I/O); slim has no curl, so the stdlib does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '7860'), timeout=4)"]

# Exec form: rag-backend is PID 1 and receives SIGTERM itself for a graceful stop. It runs
# WORKERS processes (default: the CPUs of the container's quota, or 1 with the embedded index;
# with it and WORKERS > 1 one more owns it) and forwards SIGTERM to each.
ENTRYPOINT ["rag-backend"]
CMD ["serve"]
