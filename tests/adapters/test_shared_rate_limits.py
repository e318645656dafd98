"""The rate limit store the worker processes of one container share: one SQLite file,
counted together (also by separate OS processes), private, bounded, harmless when the
clock steps, and admitting (never raising) when the file cannot be used.

The GCRA semantics themselves run over this store too, in tests/http/test_rate_limit.py."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.rate_limits.gcra import NANOSECONDS, Decision, Rate, decide, nanoseconds
from adapters.rate_limits.sqlite import SqliteArrivals
from rag_core.testing import FakeClock

HOUR = Rate(100, 3600.0)
WALL = 1.7e9  # a wall clock's reading, in seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(seconds=WALL)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "rate-limits.db"


@pytest.fixture
def store(path: Path, clock: FakeClock) -> Iterator[SqliteArrivals]:
    made = SqliteArrivals(path, clock=clock)
    yield made
    made.close()


def admitted(store: SqliteArrivals, hits: int, rate: Rate = HOUR, key: str = "k") -> int:
    return sum(store.hit("chat", key, rate, 1000) == 0.0 for _ in range(hits))


def test_two_stores_on_one_file_count_together(path: Path, clock: FakeClock) -> None:
    one, two = SqliteArrivals(path, clock=clock), SqliteArrivals(path, clock=clock)
    try:
        assert admitted(one, 60) == 60
        assert admitted(two, 60) == 40
        assert one.hit("chat", "k", HOUR, 1000) == pytest.approx(36.0)
        assert admitted(two, 1, key="another") == 1
    finally:
        one.close()
        two.close()


# Each process connects, says it is ready, waits for "go", then hits as fast as it
# can and prints how many it was admitted. A long busy timeout: this is about the
# count being shared and atomic; what a timeout does is tested below.
_WORKER = """
import sys, time
from pathlib import Path
from adapters.rate_limits.gcra import Rate
from adapters.rate_limits.sqlite import SqliteArrivals

store = SqliteArrivals(Path(sys.argv[1]), busy_timeout=10.0)
rate = Rate(100, 3600.0)
store.tracked_keys("chat")
print("ready", flush=True)
sys.stdin.readline()
print(sum(store.hit("chat", "k", rate, 1000) == 0.0 for _ in range(int(sys.argv[2]))))
"""


def test_two_processes_together_are_admitted_exactly_the_burst(path: Path) -> None:
    SqliteArrivals(path).close()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), "300"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        counts = [int(worker.communicate(timeout=60)[0]) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert sum(counts) == 100
    assert all(worker.returncode == 0 for worker in workers)


def test_the_file_is_private_and_written_ahead(store: SqliteArrivals, path: Path) -> None:
    store.hit("chat", "k", HOUR, 1000)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_locked_file_admits_at_once_and_warns_once(
    store: SqliteArrivals, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert admitted(store, 100) == 100  # the burst is spent: only a failure admits now
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        caplog.set_level(logging.WARNING)
        started = time.monotonic()
        # Refused requests only read, which a writer does not block.
        assert store.hit("chat", "k", HOUR, 1000) > 0
        assert [store.hit("chat", f"new-{i}", HOUR, 1000) for i in range(3)] == [0.0] * 3
        assert time.monotonic() - started < 1.0  # 50 ms each, not a hung event loop
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "admitting" in warnings[0].getMessage()
    assert store.tracked_keys("chat") == 1  # the admitted ones went uncounted
    assert admitted(store, 1, key="new-0") == 1


@pytest.mark.parametrize("damage", ["garbage", "folder is a file"])
def test_an_unusable_file_admits_and_does_not_raise(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    if damage == "garbage":
        path = tmp_path / "rate-limits.db"
        path.write_bytes(b"not a database, not at all" * 100)
    else:
        (tmp_path / "data").write_text("a file where the folder should be")
        path = tmp_path / "data" / "rate-limits.db"
    store = SqliteArrivals(path)
    try:
        assert all(store.hit("chat", "k", Rate(1, 60.0), 1000) == 0.0 for _ in range(5))
    finally:
        store.close()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_clock_stepping_back_costs_one_interval_not_the_jump(
    store: SqliteArrivals, clock: FakeClock
) -> None:
    rate = Rate(3, 60.0)
    assert [store.hit("chat", "k", rate, 1000) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(-86400.0)  # the wall clock steps back a day
    assert store.hit("chat", "k", rate, 1000) == pytest.approx(rate.interval)
    clock.advance(rate.interval)
    assert store.hit("chat", "k", rate, 1000) == 0.0
    clock.advance(10 * 86400.0)  # and forward: the bucket is simply full again
    assert [store.hit("chat", "k", rate, 1000) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_decide_clamps_an_arrival_that_cannot_be_legitimate() -> None:
    rate, now = Rate(3, 60.0), nanoseconds(WALL)
    spent = now + rate.period_ns  # the burst spent this very moment
    assert decide(spent, now, rate) == Decision(rate.interval_ns, None)
    # From the future: refused as if spent, and corrected in the store.
    assert decide(spent + 86400 * NANOSECONDS, now, rate) == Decision(rate.interval_ns, spent)
    assert decide(None, now, rate) == Decision(0, now + rate.interval_ns)


def tracked_table(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT policy, keys FROM tracked").fetchall())


def test_keys_stay_bounded_and_counted(store: SqliteArrivals, path: Path, clock: FakeClock) -> None:
    rate = Rate(3, 60.0)
    for i in range(500):
        store.hit("chat", f"client-{i}", rate, 10)
        store.hit("sign-in", f"client-{i}", rate, 20)
        clock.advance(0.001)
    assert (store.tracked_keys("chat"), store.tracked_keys("sign-in")) == (10, 20)
    assert tracked_table(path) == {"chat": 10, "sign-in": 20}
    clock.advance(60)
    store.hit("chat", "newcomer", rate, 10)
    assert store.tracked_keys("chat") == 1
    assert tracked_table(path) == {"chat": 1, "sign-in": 20}


def test_the_oldest_arrivals_are_the_ones_forgotten(
    store: SqliteArrivals, path: Path, clock: FakeClock
) -> None:
    rate = Rate(3, 60.0)
    for key in ["old", "middle", "new"]:
        store.hit("chat", key, rate, 2)
        clock.advance(1.0)
    with sqlite3.connect(path) as db:
        kept = {key for (key,) in db.execute("SELECT key FROM arrivals")}
    assert kept == {"middle", "new"}


def test_a_closed_store_opens_again(store: SqliteArrivals) -> None:
    assert admitted(store, 2) == 2
    store.close()
    assert admitted(store, 99) == 98


def test_a_store_used_before_a_fork_opens_its_own_connection_in_the_child(
    path: Path,
) -> None:
    store = SqliteArrivals(path)
    assert admitted(store, 1) == 1
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from adapters.rate_limits.gcra import Rate\n"
        "from adapters.rate_limits.sqlite import SqliteArrivals\n"
        "store = SqliteArrivals(Path(sys.argv[1]))\n"
        "store.hit('chat', 'k', Rate(100, 3600.0), 1000)\n"
        "if (pid := os.fork()) == 0:\n"
        "    store.hit('chat', 'k', Rate(100, 3600.0), 1000)\n"
        "    store.close()\n"
        "    os._exit(0 if store._inherited else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "store.close()\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60, check=False)
    assert done.returncode == 0
    assert admitted(store, 100) == 97  # 1 here, 1 in the parent, 1 in the child
    store.close()
