from pathlib import Path

import pytest

from adapters.cpus import quota_cpus, usable_cpus


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("200000 100000\n", 2), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", None)],
)
def test_cgroup_v2_quota_in_whole_cpus(tmp_path: Path, text: str, expected: int | None) -> None:
    _write(tmp_path, "cpu.max", text)
    assert quota_cpus(tmp_path) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"), [("300000", "100000", 3), ("-1", "100000", None)]
)
def test_cgroup_v1_quota(tmp_path: Path, quota: str, period: str, expected: int | None) -> None:
    _write(tmp_path, "cpu/cpu.cfs_quota_us", quota)
    _write(tmp_path, "cpu/cpu.cfs_period_us", period)
    assert quota_cpus(tmp_path) == expected


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert quota_cpus(tmp_path) is None


def test_the_quota_bounds_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))
    _write(tmp_path, "cpu.max", "200000 100000")
    assert usable_cpus(tmp_path) == 2
    _write(tmp_path, "cpu.max", "max 100000")
    assert usable_cpus(tmp_path) == 64
