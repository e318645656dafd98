"""Process plumbing shared by the scenarios: the fake OpenAI server, the real service,
the load generator, a black-hole / switchable TCP proxy, machine facts, RSS.

Everything listens on 127.0.0.1 only. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.settings import variable_names

ROOT = Path(__file__).resolve().parent.parent  # /work/main
BENCH = ROOT / "bench"
WORK = BENCH / ".work"  # generated corpora, data dirs, logs (git-ignored)
RESULTS = BENCH / "results"
TESTS = ROOT / "tests"
PYTHON = sys.executable
SERVICE_SRC = "BENCH_SERVICE_SRC"
"""Set to another checkout's ``src``: the service runs that code (same venv, harness,
fake server and load generator), for back-to-back comparisons."""
PY_SPY = "BENCH_PY_SPY"
"""Set to a py-spy binary: the chat and stream scenarios record the service with it
during each level (collapsed stacks in bench/.work/profiles/)."""
STEP_TIMER = "BENCH_STEP_TIMER"
"""Set to a file: the service times its steps into it (bench/step_timer/sitecustomize.py)."""
SHARED_CORPUS = (ROOT / ".." / "shared" / "corpus" / "physical-ai-textbook" / "docs").resolve()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    # The service's settings must not leak from the caller's environment.
    settings = variable_names()
    keep = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    keep.pop("PYTHONPATH", None)
    return {**keep, **extra}


# -- machine ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    load = os.getloadavg()
    other = os.environ.get(SERVICE_SRC)
    if other:  # the service runs another checkout's src: name its commit
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=other, capture_output=True, text=True
        ).stdout.strip()
        commit = f"{commit} (service from {other})"
        dirty = False
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + ("+dirty(src)" if dirty else ""),
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": sys.version.split()[0],
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory now and at peak (VmRSS, VmHWM) of ``pid``, and its thread count."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
            elif key == "Threads":
                out["threads"] = int(value)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by ``pid`` (all threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children(pid: int) -> list[int]:
    """The direct children of ``pid``: /proc/PID/task/*/children, or (kernels without it)
    every /proc/*/stat whose parent is ``pid``."""
    found: set[int] = set()
    tasks = Path(f"/proc/{pid}/task")
    files = list(tasks.glob("*/children")) if tasks.is_dir() else []
    if files:
        for file in files:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in file.read_text().split())
        return sorted(found)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
    return sorted(found)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now (parent first)."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        if current in tree or not Path(f"/proc/{current}").exists():
            continue
        tree.append(current)
        queue.extend(children(current))
    return tree


def command_line(pid: int, width: int = 120) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:width]
    return ""


# -- processes ---------------------------------------------------------------------


@dataclass
class Proc:
    """A child process whose output goes to a log file (never an undrained pipe)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 25.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode


def _prune_logs(folder: Path, keep: int) -> None:
    """Keep the ``keep`` newest process logs (access logs of a load test are large)."""
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _spawn(
    name: str, argv: Sequence[str], env: dict[str, str], cwd: Path, log_name: str | None = None
) -> Proc:
    WORK.mkdir(parents=True, exist_ok=True)
    log_path = WORK / "logs" / (log_name or f"{name}-{int(time.time() * 1000)}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _prune_logs(log_path.parent, keep=60)
    handle = log_path.open("wb")
    popen = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return Proc(name, popen, log_path)


# The fake OpenAI servers: the module run and where from (tests/ is on PYTHONPATH for both).
_FAKES = {"threads": ("fakes.openai_server", TESTS), "loop": ("bench.fake_loop", ROOT)}


@contextlib.contextmanager
def fake_openai(
    *,
    first_byte_latency: float = 0.0,
    token_delay: float = 0.0,
    embedding_latency: float = 0.0,
    dimension: int = 1536,
    kind: str = "threads",
) -> Iterator[Proc]:
    """tests/fakes/openai_server.py as its own process (tests/ on its PYTHONPATH): a
    thread per connection; ``kind="loop"``: bench/fake_loop.py, the same answers on one
    event loop (cheaper per request under a mixed load of hundreds of connections)."""
    if kind not in _FAKES:
        raise ValueError(f"unknown fake {kind!r}: {' or '.join(_FAKES)}")
    module, cwd = _FAKES[kind]
    port = free_port()
    env = clean_env(PYTHONPATH=os.pathsep.join(str(p) for p in dict.fromkeys((cwd, TESTS))))
    argv = [
        PYTHON,
        "-m",
        module,
        "--port",
        str(port),
        "--first-byte-latency",
        str(first_byte_latency),
        "--token-delay",
        str(token_delay),
        "--embedding-latency",
        str(embedding_latency),
        "--dimension",
        str(dimension),
    ]
    proc = _spawn("fake-openai", argv, env, cwd)
    proc.base_url = f"http://127.0.0.1:{port}/v1"
    proc.extra = {
        "kind": kind,
        "first_byte_latency": first_byte_latency,
        "token_delay": token_delay,
        "embedding_latency": embedding_latency,
        "dimension": dimension,
    }
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{proc.base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake OpenAI did not start:\n{proc.tail()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop(timeout=5)


_FAKE_QDRANT_MAIN = """
import signal, threading
from fakes.qdrant_server import FakeQdrantServer
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
with FakeQdrantServer() as server:
    print("fake Qdrant on", server.url, flush=True)
    stop.wait()
"""


@contextlib.contextmanager
def fake_qdrant() -> Iterator[Proc]:
    """tests/fakes/qdrant_server.py as its own process: a Qdrant REST server backed by
    qdrant-client's local mode (in memory, one request at a time). Not a Qdrant server's
    performance: a stand-in so that several workers can share one index here."""
    proc = _spawn(
        "fake-qdrant", [PYTHON, "-c", _FAKE_QDRANT_MAIN], clean_env(PYTHONPATH=str(TESTS)), TESTS
    )
    try:
        deadline = time.monotonic() + 30
        while not proc.base_url:
            for line in proc.tail(5).splitlines():
                if line.startswith("fake Qdrant on "):
                    proc.base_url = line.removeprefix("fake Qdrant on ").strip()
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake Qdrant did not start:\n{proc.tail()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop(timeout=5)


def service_env(
    data_dir: Path,
    port: int,
    *,
    openai: Proc | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    # One load generator on one address plays many users: the per-address rate limits
    # (e.g. 30 chats a minute) are switched off, or they would be all we measure.
    env = clean_env(
        PORT=str(port),
        DATA_DIR=str(data_dir),
        ADMIN_API_KEY="bench-admin-key",
        RATE_LIMIT_ENABLED="false",
    )
    if os.environ.get(SERVICE_SRC):
        env["PYTHONPATH"] = os.environ[SERVICE_SRC]
    if os.environ.get(STEP_TIMER):
        paths = [str(BENCH / "step_timer"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["BENCH_STEP_TIMER_OUT"] = os.environ[STEP_TIMER]
    if openai is not None:
        env.update(
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=openai.base_url,
            OPENAI_EMBEDDING_DIMENSION=str(openai.extra["dimension"]),
        )
    env.update(extra or {})
    return env


def start_service(
    env: dict[str, str], *args: str, name: str = "service", argv: Sequence[str] | None = None
) -> Proc:
    """``rag-backend serve ARGS`` (or ``argv``, e.g. an experiment's server) on env's PORT."""
    command = list(argv) if argv else [PYTHON, "-m", "entrypoints.cli", "serve", *args]
    proc = _spawn(name, command, env, ROOT)
    proc.base_url = f"http://127.0.0.1:{env['PORT']}"
    return proc


def wait_ready(proc: Proc, timeout: float = 60.0, poll: float = 0.01) -> float:
    """Seconds from now until /health/ready answers 200 (RuntimeError on timeout or exit)."""
    started = time.monotonic()
    deadline = started + timeout
    with httpx.Client(timeout=1.0) as client:
        while True:
            try:
                if client.get(f"{proc.base_url}/health/ready").status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not ready in {timeout} s:\n{proc.tail()}")
            time.sleep(poll)


@contextlib.contextmanager
def running_service(
    env: dict[str, str], *args: str, timeout: float = 120.0, argv: Sequence[str] | None = None
) -> Iterator[Proc]:
    proc = start_service(env, *args, argv=argv)
    try:
        proc.extra["ready_seconds"] = wait_ready(proc, timeout)
        yield proc
    finally:
        code = proc.stop()
        if code not in (0, -15):
            log(f"service exited with {code}; log tail:\n{proc.tail()}")


def cli(
    *args: str, env: dict[str, str], timeout: float = 900.0
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``rag-backend ARGS`` (as ``python -m entrypoints.cli``); wall seconds and result."""
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "entrypoints.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return time.perf_counter() - started, done


def parse_report(line_text: str) -> dict[str, float]:
    """The CLI's ingest report line ("documents added: 3, ..., embedding calls: 2")."""
    report: dict[str, float] = {}
    for line in line_text.splitlines():
        if "documents added" not in line:
            continue
        for part in line.split(","):
            key, _, value = part.partition(":")
            with contextlib.suppress(ValueError):
                report[key.strip().replace(" ", "_")] = float(value)
    return report


# -- load generator --------------------------------------------------------------------


def loadgen(
    base_url: str,
    path: str,
    *,
    concurrency: int,
    duration: float,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    bodies_file: Path | None = None,
    stream: bool = False,
    engine: str = "httpx",
    injected: float = 0.0,
    injected_first_token: float = 0.0,
    warmup: float = 1.0,
    max_requests: int = 0,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process; its JSON summary."""
    argv = [
        PYTHON,
        "-m",
        "bench.loadgen",
        "--url",
        base_url + path,
        "--method",
        method,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--engine",
        engine,
        "--injected",
        str(injected),
        "--injected-first-token",
        str(injected_first_token),
        "--timeout",
        str(timeout),
        "--max-requests",
        str(max_requests),
    ]
    if body is not None:
        argv += ["--body", json.dumps(body)]
    if bodies_file is not None:
        argv += ["--bodies-file", str(bodies_file)]
    if stream:
        argv.append("--stream")
    for key, value in (headers or {}).items():
        argv += ["--header", f"{key}: {value}"]
    bound = warmup + duration + timeout + 60
    done = subprocess.run(
        argv, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=bound
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- dependencies that hang --------------------------------------------------------------


class SwitchableProxy:
    """A loopback TCP proxy to ``target`` that can be switched to black-hole mode:
    it then accepts new connections and never answers, and stops forwarding on the
    open ones (their bytes are read and dropped, nothing comes back), as a hung
    PostgreSQL or a silently dropping firewall would. Runs its own event loop in a
    thread. ``target=None``: black hole from the start."""

    def __init__(self, target: tuple[str, int] | None) -> None:
        self.target = target
        self.black_hole = target is None
        self.port = free_port()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> SwitchableProxy:
        self._loop.set_exception_handler(lambda loop, context: None)  # peers vanish: expected
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._server = fut.result(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=2) if tasks else None

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def hang(self) -> None:
        self.black_hole = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.black_hole or self.target is None:
                await self._swallow(reader)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            pipes = [
                asyncio.ensure_future(self._pipe(reader, up_writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.wait(pipes)
            up_writer.close()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                return
            if self.black_hole:  # hung: read and drop, never answer
                await self._swallow(src)
                return
            dst.write(data)
            await dst.drain()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            if not await reader.read(65536):
                await asyncio.sleep(3600)  # peer closed its side: keep ours open, silent
            # else: drop


# -- results ---------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def save(scenario: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{scenario}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    log(f"results written to {path.relative_to(ROOT)}")
    return path


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def profiled(pid: int, name: str) -> Iterator[Path | None]:
    """py-spy (``BENCH_PY_SPY``) records ``pid`` while the block runs, 100 samples a
    second, into ``bench/.work/profiles/<name>-<time>.txt`` (collapsed stacks, idle
    samples left out); yields that path, or None when ``BENCH_PY_SPY`` is unset."""
    binary = os.environ.get(PY_SPY)
    if not binary:
        yield None
        return
    out = WORK / "profiles" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--rate", "100", "--gil", "--format", "raw"]
    spy = subprocess.Popen(
        [*argv, "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield out
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=10)
        log(f"profile written to {out.relative_to(ROOT)}")


class Sampler:
    """Samples a process's CPU use and memory every ``interval`` seconds in a thread:
    ``with Sampler(pid) as s: ...`` then ``s.summary()`` (mean CPU %, peak RSS, threads)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Sampler:
        self._cpu0, self._t0 = cpu_seconds(self.pid), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._cpu1, self._t1 = cpu_seconds(self.pid), time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(rss_mb(self.pid))

    def summary(self) -> dict[str, float]:
        elapsed = max(self._t1 - self._t0, 1e-9)
        rss = [s.get("VmRSS", 0.0) for s in self.samples] or [rss_mb(self.pid).get("VmRSS", 0.0)]
        threads = [s.get("threads", 0) for s in self.samples] or [0]
        return {
            "service_cpu_percent": round(100 * (self._cpu1 - self._cpu0) / elapsed, 1),
            "service_rss_peak_mb": max(rss),
            "service_threads_max": max(threads),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }


class TreeSampler:
    """Like :class:`Sampler`, for a process and all its descendants (a supervisor and its
    workers): CPU summed over every process of the tree during the block (a process born
    in it counts from zero, one that exits counts up to its last sample), the largest
    number of processes seen, and each process's memory at the end (``VmHWM``: its peak)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.rss_total: list[float] = []
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = self._t1 = 0.0
        self.processes: list[dict[str, Any]] = []

    def _sample(self, baseline: bool) -> None:
        pids = process_tree(self.pid)
        self.max_processes = max(self.max_processes, len(pids))
        total = 0.0
        for pid in pids:
            cpu = cpu_seconds(pid)
            self.first.setdefault(pid, cpu if baseline else 0.0)
            self.last[pid] = cpu
            total += rss_mb(pid).get("VmRSS", 0.0)
        self.rss_total.append(total)

    def __enter__(self) -> TreeSampler:
        self._t0 = time.monotonic()
        self._sample(baseline=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample(baseline=False)
        self._t1 = time.monotonic()
        self.processes = [
            {
                "pid": pid,
                "role": "parent" if pid == self.pid else "child",
                "command": command_line(pid),
                "cpu_seconds": round(self.last.get(pid, 0.0) - self.first.get(pid, 0.0), 2),
                **rss_mb(pid),
            }
            for pid in process_tree(self.pid)
        ]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(baseline=False)

    def summary(self) -> dict[str, Any]:
        elapsed = max(self._t1 - self._t0, 1e-9)
        cpu = sum(self.last[pid] - self.first[pid] for pid in self.last)
        return {
            "service_cpu_percent": round(100 * cpu / elapsed, 1),
            "service_cpu_seconds": round(cpu, 2),
            "service_processes_max": self.max_processes,
            "service_rss_total_peak_mb": round(max(self.rss_total or [0.0]), 1),
            "service_processes": self.processes,
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
