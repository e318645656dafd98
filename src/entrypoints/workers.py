"""Serving with N worker processes: the cores the container may use.

``rag-backend serve`` with ``WORKERS`` > 1 (unset: the CPUs of the cgroup quota,
``adapters.cpus``, but 1 with the embedded index: see :func:`worker_count`) becomes a
supervisor. It holds the port (a socket bound with
``SO_REUSEPORT``, never listening), then starts N workers (multiprocessing ``spawn``: a
fresh interpreter each, nothing inherited but the settings and the address), each a
whole app with its own container, breakers and health monitor, listening on a socket of
its own bound to the same address once its start-up is done. The kernel spreads new
connections over the listening sockets by a hash of their addresses; with one shared
socket the worker that woke first took a whole burst (at 50 users one worker served
all of them; bench/README.md, "Topology and peer"). The price: connections still
queued on a worker that dies or stops are reset, not taken by another. It then only
watches them:

- **Start-up**: the first worker starts alone (it prepares the schema and ingests
  DOCS_PATH), then the others; the service is up when every worker has started.
  A worker that fails before starting stops the others, and ``serve`` exits with its
  code (2 for a configuration error, as with one process).
- **A worker that dies** later is replaced (the others keep serving meanwhile); five
  deaths within a minute stop the service, exit code 1, rather than loop.
- **SIGTERM / SIGINT**: every worker is sent SIGTERM at once and drains as one
  process does (``/health/ready`` 503, in-flight requests and streams finish within
  the grace period, pending writes flushed); then the supervisor exits. Workers run in
  a process group of their own, so a terminal's Ctrl-C reaches the supervisor only
  (a second signal would make uvicorn skip the drain), and they get SIGTERM if the
  supervisor itself dies (Linux ``PR_SET_PDEATHSIG``).
- **What each worker shares**: the rate limits (a file in DATA_DIR), metrics
  (prometheus-client's multiprocess mode: the supervisor gives the workers an empty
  ``PROMETHEUS_MULTIPROC_DIR`` and marks a dead worker's files), the CLI's hand-over
  record (the supervisor draws the nonce every worker proves, and publishes it once
  they are up). DOCS_PATH is ingested by the first worker only. Each worker has its
  own circuit breakers, health monitor and outbox file (docs/replicas.md).

The embedded index (Qdrant Edge) admits one process per folder: with several workers an
*index owner* process holds it, started before the workers and replaced like them, and
every worker reaches it over a Unix socket (``adapters.index_owner``; the engine's searches
then hold the owner's GIL, not a worker's). The in-memory adapters belong to their
process, so with ``VECTOR_INDEX=memory`` or ``DATABASE=memory`` the service serves with
one process whatever ``WORKERS`` says.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any

from adapters.cpus import usable_cpus
from adapters.settings import Settings
from entrypoints import instance
from entrypoints.http.worker_metrics import worker_exited
from entrypoints.server import GRACE_SECONDS

log = logging.getLogger(__name__)

RESTARTS_PER_MINUTE = 5
"""More worker deaths than this within a minute stop the service."""
STOP_MARGIN_SECONDS = 15.0
"""How long past the grace period a stopping worker may take (its last flushes) before it
is killed."""
_SPAWN = multiprocessing.get_context("spawn")
_PR_SET_PDEATHSIG = 1


OWNED_INDEXES = frozenset({"edge"})
"""Indexes one process must hold (the embedded one admits one process per folder): with
several workers, an owner process holds it and serves it to them (adapters.index_owner)."""


def worker_count(settings: Settings) -> int:
    """How many HTTP workers serve: WORKERS, else the CPUs the container may use, except
    with the embedded index (one process unless WORKERS says more: measured on 2 cores,
    one process served more than two workers and the index owner at 50, 200 and 500
    users, in 200 MB instead of 520-670; bench/README.md, "Topology and peer"); 1 when
    the in-memory index or database would be each process's own."""
    if settings.workers is None and settings.vector_index_choice in OWNED_INDEXES:
        return 1
    wanted = settings.workers or usable_cpus()
    held = settings.vector_index_choice == "memory" or settings.database == "memory"
    if wanted > 1 and held:
        if settings.workers:
            log.warning(
                "WORKERS=%d, but the in-memory index or database is one process's own: "
                "serving with 1",
                settings.workers,
            )
        return 1
    return wanted


class Supervisor:
    """Starts the index owner if one is needed, then ``count`` workers on one port;
    replaces a process that dies, drains them all on SIGTERM/SIGINT (see the module
    docstring). ``run`` returns the exit code."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings.model_copy(update={"workers": count})
        self.count = count
        self._stopping = False
        self._deaths: list[float] = []
        self._owner: _Child | None = None
        self._workers: list[_Child] = []

    def run(self) -> int:
        try:
            held = bound_socket(self.settings.host, _free_port(self.settings))
        except OSError as exc:
            where = f"{self.settings.host}:{self.settings.port}"
            log.error("cannot listen on %s: %s", where, exc.strerror or exc)
            return 1
        address = (self.settings.host, held.getsockname()[1])
        metrics_dir = tempfile.mkdtemp(prefix="rag-metrics-")
        # Read by prometheus-client when each (spawned) worker imports it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        owner_dir = tempfile.mkdtemp(prefix="rag-index-")  # short: a socket path has ~107 bytes
        nonce = instance.new_nonce()
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        record: instance.Published | None = None
        try:
            settings = self.settings
            if settings.vector_index_choice in OWNED_INDEXES:
                path = Path(owner_dir) / "index.sock"
                self._owner = _Child("index owner", _own_index, (settings, path))
                code = self._wait_started([self._owner])
                if code is not None:
                    return code
                settings = settings.model_copy(update={"index_owner_socket": path})
            # The first worker prepares the schema and ingests DOCS_PATH before the others
            # start, so that whichever answers /health/ready, ready means the docs are in.
            self._workers = [_Child("worker 0", _serve_worker, (settings, address, nonce))]
            code = self._wait_started(self._workers)
            if code is None:
                others = settings.model_copy(update={"docs_path": ""})  # ingested once
                self._workers += [
                    _Child(f"worker {slot}", _serve_worker, (others, address, nonce))
                    for slot in range(1, self.count)
                ]
                code = self._wait_started(self._workers)
            if code is not None:
                return code
            log.info(
                "serving on %s with %d workers (pids %s)%s",
                instance.local_url(self.settings),
                self.count,
                ", ".join(str(w.pid) for w in self._workers),
                f", the index owned by pid {self._owner.pid}" if self._owner else "",
            )
            try:
                record = instance.publish(self.settings, nonce)
            except OSError as exc:
                log.warning("cannot publish the service record (%s)", exc.strerror or exc)
            return self._watch()
        finally:
            self._stop_all()
            held.close()
            if record is not None:
                instance.withdraw(self.settings, record)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
            shutil.rmtree(owner_dir, ignore_errors=True)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _children(self) -> list[_Child]:
        return ([self._owner] if self._owner else []) + self._workers

    def _wait_started(self, children: list[_Child]) -> int | None:
        """None once every one of ``children`` has started; else the exit code to stop with."""
        while not self._stopping:
            for child in children:  # one that dies once started is replaced later
                if not child.started.is_set() and not child.process.is_alive():
                    code = child.process.exitcode or 1
                    log.error("%s exited with %d while starting", child.name, code)
                    return code
            if all(child.started.is_set() for child in children):
                return None
            time.sleep(0.05)
        return 0

    def _watch(self) -> int:
        while not self._stopping:
            time.sleep(0.2)
            for child in self._children():
                if self._stopping or child.process.is_alive():
                    continue
                log.error(
                    "%s (pid %s) exited with %s: starting another",
                    child.name,
                    child.pid,
                    child.process.exitcode,
                )
                _worker_exited(child.pid)
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < 60] + [now]
                if len(self._deaths) > RESTARTS_PER_MINUTE:
                    log.error("%d deaths within a minute: stopping", len(self._deaths))
                    return 1
                if child is self._owner:
                    self._owner = child.replacement()
                else:
                    self._workers[self._workers.index(child)] = child.replacement()
        return 0

    def _stop_all(self) -> None:
        # Workers first: what they are still answering may need the index.
        for group in (self._workers, [self._owner] if self._owner else []):
            for child in group:
                child.terminate()
            deadline = time.monotonic() + GRACE_SECONDS + STOP_MARGIN_SECONDS
            for child in group:
                child.process.join(max(0.0, deadline - time.monotonic()))
                if child.process.is_alive():
                    log.error("%s did not stop in time: killed", child.name)
                    child.process.kill()
                    child.process.join()
                _worker_exited(child.pid)


Target = Callable[..., int]
"""What a child process runs: its arguments, then the callback to call once started;
returns the exit code."""


class _Child:
    """One spawned process of the service: a worker or the index owner."""

    def __init__(self, name: str, target: Target, args: tuple[Any, ...]) -> None:
        self.name, self._target, self._args = name, target, args
        self.started: Event = _SPAWN.Event()
        self.process: SpawnProcess = _SPAWN.Process(
            target=_child_main,
            args=(target, args, self.started, os.getpid()),
            name=f"rag-{name.replace(' ', '-')}",
        )
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def replacement(self) -> _Child:
        return _Child(self.name, self._target, self._args)

    def terminate(self) -> None:
        if self.process.is_alive() and self.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)


def _free_port(settings: Settings) -> int:
    """The port to serve on (``PORT``, or any free one for 0) once a plain bind of it
    succeeds: ``SO_REUSEPORT`` alone would let this service share the port with another
    one already listening there (an earlier run still draining, a second ``serve``), and
    split their connections. Raises OSError when it is taken."""
    with bound_socket(settings.host, settings.port, reuse_port=False) as probe:
        return int(probe.getsockname()[1])


def bound_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port), with ``SO_REUSEPORT``
    unless told otherwise, not listening yet: uvicorn listens on it once the app has
    started. ``SO_REUSEADDR`` always (a connection in TIME_WAIT owns no port). Raises
    OSError (e.g. the address is in use by a socket without ``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker_exited(pid: int | None) -> None:
    """Let the metrics forget a worker that is gone (its live gauges)."""
    if pid is not None:
        worker_exited(pid)


def _child_main(target: Target, args: tuple[Any, ...], started: Event, parent: int) -> None:
    """A child process: logging as configured, then ``target``; exits with its code."""
    os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the supervisor, which forwards SIGTERM
    _die_with(parent)
    from entrypoints import logs

    settings: Settings = args[0]
    logs.configure(settings.log_level, settings.log_output, secrets=settings.secret_values())
    sys.exit(target(*args, started.set))


def _serve_worker(
    settings: Settings, address: tuple[str, int], nonce: str, on_started: Callable[[], None]
) -> int:
    """A worker: the app of one process, on a socket of its own bound to ``address``."""
    from entrypoints import cli

    sock = bound_socket(*address)
    return cli.serve_app(settings, sockets=[sock], nonce=nonce, on_started=on_started)


def _own_index(settings: Settings, path: Path, on_started: Callable[[], None]) -> int:
    """The index owner: the embedded index served to the workers at ``path``."""
    from entrypoints import cli, index_owner

    try:
        index_owner.run(settings, path, ready=on_started)
    except Exception as exc:  # one line, as a single process reports it
        print(f"error: cannot open the index: {cli.describe(exc, settings)}", file=sys.stderr)
        return cli.exit_code(exc)
    return 0


def _die_with(parent: int) -> None:
    """SIGTERM this process when ``parent`` (the supervisor) dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
