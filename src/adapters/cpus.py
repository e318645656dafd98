"""How many CPUs this process may use: the container's cgroup quota, not the host's count.

A container limited to 2 CPUs on a 64-core host sees 64 in ``os.cpu_count()``; its
quota is in the cgroup's ``cpu.max`` (v2: ``"200000 100000"`` is 2 CPUs, ``"max ..."``
no limit) or ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (v1, ``-1`` no limit). The
answer is the smallest of the quota (rounded up), the CPUs this process may run on
(its affinity) and the host's count, and at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use (see the module docstring)."""
    counts = [_affinity(), quota_cpus(cgroup)]
    return max(1, min(count for count in counts if count is not None))


def quota_cpus(cgroup: Path = CGROUP) -> int | None:
    """The cgroup's CPU quota in whole CPUs (rounded up), or None when it sets none."""
    quota = _v2_quota(cgroup / "cpu.max")
    if quota is None:
        quota = _v1_quota(cgroup / "cpu" / "cpu.cfs_quota_us", cgroup / "cpu" / "cpu.cfs_period_us")
    return None if quota is None else max(1, math.ceil(quota))


def _v2_quota(path: Path) -> float | None:
    try:
        limit, period = path.read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(quota_path: Path, period_path: Path) -> float | None:
    try:
        quota, period = int(quota_path.read_text()), int(period_path.read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count()
