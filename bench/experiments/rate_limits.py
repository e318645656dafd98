"""Microseconds per rate limit hit: this process's memory against the SQLite file the
workers of one container share, in 1 and 2 processes hitting at once.

    python -m bench.experiments.rate_limits [--hits 20000]

Each process runs ``RateLimiter.hit`` (what the app calls per request) ``--hits`` times,
timing each hit, in two modes: *admitted* (a rate nothing exceeds, over 1000 keys:
every hit writes) and *refused* (one key whose burst is spent: every hit is refused).
With 2 processes both start together (a barrier) on the same file; in memory each
counts alone, so that row shows only the CPU they share. Prints, per process, the mean,
median and p99 per hit and how many hits took over 10 ms (past 50 ms on a lock, a hit gives up
and admits: the warning on stderr).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from adapters.rate_limits.gcra import Arrivals
from adapters.rate_limits.memory import MemoryArrivals
from adapters.rate_limits.sqlite import SqliteArrivals
from entrypoints.http.rate_limiter import RateLimitConfig, RateLimiter

_RATES = {"admitted": "1000000000/second", "refused": "1/hour"}
_SLOW_NS = 10_000_000  # a hit over 10 ms stalls the event loop noticeably


def _hits(store: str, mode: str, path: str, hits: int, barrier: Barrier, out: Queue) -> None:
    arrivals: Arrivals = MemoryArrivals() if store == "memory" else SqliteArrivals(Path(path))
    limiter = RateLimiter(RateLimitConfig.parse({"chat": _RATES[mode]}), store=arrivals)
    keys = [f"user:{n}" for n in range(1000)] if mode == "admitted" else ["user:spent"]
    for key in keys:  # warm: the connection opened, the keys known, the burst spent
        limiter.hit("chat", key)
    barrier.wait()
    timings = []
    clock = time.perf_counter_ns
    for n in range(hits):
        key = keys[n % len(keys)]
        started = clock()
        limiter.hit("chat", key)
        timings.append(clock() - started)
    limiter.close()
    out.put(timings)


def _summary(timings: list[int]) -> str:
    mean = statistics.fmean(timings) / 1000
    cuts = statistics.quantiles(timings, n=100)
    slow = sum(t > _SLOW_NS for t in timings)
    return f"{mean:7.1f} {cuts[49] / 1000:7.1f} {cuts[98] / 1000:7.1f} {slow:5}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=20_000, help="hits per process and mode")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    head = f"{'mean us':>7} {'p50 us':>7} {'p99 us':>7} {'>10ms':>5}"
    print(f"{'store':8} {'mode':9} {'procs':>5}  {head}  (each process)")
    for store in ["memory", "sqlite"]:
        for mode in ["admitted", "refused"]:
            for processes in [1, 2]:
                with tempfile.TemporaryDirectory(prefix="bench-rate-limits-") as folder:
                    path = str(Path(folder) / "rate-limits.db")
                    barrier, out = spawn.Barrier(processes), spawn.Queue()
                    workers = [
                        spawn.Process(
                            target=_hits, args=(store, mode, path, args.hits, barrier, out)
                        )
                        for _ in range(processes)
                    ]
                    for worker in workers:
                        worker.start()
                    runs = [out.get() for _ in workers]
                    for worker in workers:
                        worker.join()
                row = "  ".join(_summary(timings) for timings in runs)
                print(f"{store:8} {mode:9} {processes:5}  {row}", flush=True)


if __name__ == "__main__":
    main()
