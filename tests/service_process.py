"""Running the real service (`rag-backend serve` under uvicorn) and the CLI as
subprocesses on loopback, as a user would."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.settings import variable_names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any of the service's settings, plus ``extra``.

    ``WORKERS=1`` unless ``extra`` says otherwise: the default (the machine's CPUs) would
    make a test's process tree depend on the machine; tests/test_workers.py runs several."""
    settings = variable_names()
    keep = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    return {**keep, "WORKERS": "1", **extra}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def running_service(env: dict[str, str], cwd: Path, *args: str) -> Iterator[str]:
    """Start `rag-backend serve ARGS` with ``env`` (which must set PORT), wait until
    /health/ready answers 200, yield the base URL, then stop it with SIGTERM and
    check that it shut down cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                pytest.fail(f"service exited: {process.stdout.read() if process.stdout else ''}")
            time.sleep(0.1)
        else:
            pytest.fail("service did not become ready in 30 s")
        yield base
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        # uvicorn re-raises SIGTERM after a graceful shutdown, so -15 is a clean exit here.
        assert process.returncode in (0, -15), output
        assert "Application shutdown complete" in output, output
