"""Background health probing: requests read a cached report and never wait on a probe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import attrs

from rag_core.errors import DependencyUnavailable
from rag_core.health import ComponentHealth, HealthReport, Status, aggregate, status_of_circuit
from rag_core.ports import Clock

_WORST = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@attrs.frozen(slots=True)
class ProbeSpec:
    """One component. ``check`` returns when healthy and raises when not (None: the
    component is judged by its circuit alone, e.g. a paid API not worth probing).
    ``circuit`` returns the state of its circuit breaker ("closed", "half_open",
    "open"), read at report time."""

    name: str
    check: Callable[[], Awaitable[None]] | None
    critical: bool = True
    detail: str = ""
    circuit: Callable[[], str] | None = None


class HealthMonitor:
    """Runs every probe concurrently, each bounded by ``deadline`` seconds, and
    keeps the last results. ``report()`` only reads that cache (and the circuits'
    in-memory state), so it answers in microseconds whatever a dependency does."""

    def __init__(self, probes: Sequence[ProbeSpec], clock: Clock, *, deadline: float = 2.0) -> None:
        self._probes = tuple(probes)
        self._clock = clock
        self._deadline = deadline
        self._results = {
            p.name: ComponentHealth(
                name=p.name,
                status=Status.WARN if p.check else Status.PASS,
                critical=p.critical,
                detail=p.detail if p.check is None else "not checked yet",
            )
            for p in self._probes
        }

    def report(self) -> HealthReport:
        return aggregate(self._with_circuit(p) for p in self._probes)

    async def refresh(self) -> HealthReport:
        results = await asyncio.gather(*(self._check(p) for p in self._probes if p.check))
        for result in results:
            self._results[result.name] = result
        return self.report()

    async def run(self, interval: float) -> None:
        """Refresh forever, every ``interval`` seconds (cancel to stop)."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    def _with_circuit(self, probe: ProbeSpec) -> ComponentHealth:
        cached = self._results[probe.name]
        if probe.circuit is None:
            return cached
        state = probe.circuit()
        status = max(cached.status, status_of_circuit(state), key=_WORST.__getitem__)
        return attrs.evolve(cached, status=status, circuit_state=state)

    async def _check(self, probe: ProbeSpec) -> ComponentHealth:
        assert probe.check is not None
        started = self._clock.monotonic()
        error: str | None = None
        try:
            async with asyncio.timeout(self._deadline):
                await probe.check()
        except TimeoutError:
            error = "Timeout"
        except DependencyUnavailable as exc:
            error = exc.reason
        except Exception as exc:  # any failure of a probe is a failed check, never a crash
            error = type(exc).__name__
        return ComponentHealth(
            name=probe.name,
            status=Status.FAIL if error else Status.PASS,
            critical=probe.critical,
            detail=probe.detail,
            latency_ms=round((self._clock.monotonic() - started) * 1000, 2),
            error=error,
            checked_at=self._clock.now(),
        )
