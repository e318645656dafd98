from __future__ import annotations

import asyncio

import pytest

from rag_core.errors import DependencyUnavailable
from rag_core.health import ComponentHealth, Overall, Status, aggregate, status_of_circuit
from rag_core.monitoring import HealthMonitor, ProbeSpec
from rag_core.testing import FakeClock


def component(status: Status, critical: bool) -> ComponentHealth:
    return ComponentHealth(name=f"{status}-{critical}", status=status, critical=critical)


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        ([], Overall.HEALTHY),
        ([component(Status.PASS, True), component(Status.PASS, False)], Overall.HEALTHY),
        ([component(Status.PASS, True), component(Status.WARN, True)], Overall.DEGRADED),
        ([component(Status.PASS, True), component(Status.FAIL, False)], Overall.DEGRADED),
        ([component(Status.FAIL, True), component(Status.PASS, False)], Overall.UNHEALTHY),
    ],
)
def test_aggregation_order(components: list[ComponentHealth], expected: Overall) -> None:
    assert aggregate(components).status is expected


def test_circuit_state_maps_to_status() -> None:
    assert [status_of_circuit(s) for s in ("closed", "half_open", "open")] == [
        Status.PASS,
        Status.WARN,
        Status.FAIL,
    ]


async def test_monitor_reports_cached_results_and_bounds_each_probe() -> None:
    hang = asyncio.Event()

    async def ok() -> None:
        return None

    async def hangs() -> None:
        await hang.wait()

    async def fails() -> None:
        raise DependencyUnavailable("database", "OperationalError")

    monitor = HealthMonitor(
        [
            ProbeSpec("index", ok, critical=True),
            ProbeSpec("slow", hangs, critical=False),
            ProbeSpec("db", fails, critical=False),
        ],
        FakeClock(step=0.001),
        deadline=0.05,
    )
    before = monitor.report()
    assert before.status is Overall.DEGRADED  # nothing checked yet is a warning, not a pass
    report = await monitor.refresh()
    by_name = {c.name: c for c in report.components}
    assert by_name["index"].status is Status.PASS
    assert by_name["slow"].status is Status.FAIL and by_name["slow"].error == "Timeout"
    assert by_name["db"].error == "OperationalError"
    assert report.status is Overall.DEGRADED
    assert monitor.report() == report


async def test_an_open_circuit_fails_a_component_whose_probe_passed() -> None:
    state = {"value": "closed"}

    async def ok() -> None:
        return None

    monitor = HealthMonitor(
        [
            ProbeSpec("index", ok, critical=True, circuit=lambda: state["value"]),
            ProbeSpec("openai", None, critical=False, circuit=lambda: state["value"]),
        ],
        FakeClock(step=0.001),
    )
    await monitor.refresh()
    assert monitor.report().status is Overall.HEALTHY
    state["value"] = "half_open"
    assert monitor.report().status is Overall.DEGRADED
    state["value"] = "open"
    report = monitor.report()
    assert report.status is Overall.UNHEALTHY
    assert {c.name: c.circuit_state for c in report.components} == {
        "index": "open",
        "openai": "open",
    }
