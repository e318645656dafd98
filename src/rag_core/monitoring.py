"""Background health probing: requests read a cached report and never wait on a probe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import attrs

from rag_core.errors import DependencyUnavailable
from rag_core.health import ComponentHealth, HealthReport, Status, aggregate
from rag_core.ports import Clock


@attrs.frozen(slots=True)
class ProbeSpec:
    """One component to probe. ``check`` returns when healthy and raises when not."""

    name: str
    check: Callable[[], Awaitable[None]]
    critical: bool = True
    detail: str = ""


class HealthMonitor:
    """Runs every probe concurrently, each bounded by ``deadline`` seconds, and
    keeps the last results. ``report()`` only reads that cache."""

    def __init__(self, probes: Sequence[ProbeSpec], clock: Clock, *, deadline: float = 2.0) -> None:
        self._probes = tuple(probes)
        self._clock = clock
        self._deadline = deadline
        self._results = {
            p.name: ComponentHealth(
                name=p.name, status=Status.WARN, critical=p.critical, detail="not checked yet"
            )
            for p in self._probes
        }

    def report(self) -> HealthReport:
        return aggregate(self._results.values())

    async def refresh(self) -> HealthReport:
        results = await asyncio.gather(*(self._check(p) for p in self._probes))
        for result in results:
            self._results[result.name] = result
        return self.report()

    async def run(self, interval: float) -> None:
        """Refresh forever, every ``interval`` seconds (cancel to stop)."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    async def _check(self, probe: ProbeSpec) -> ComponentHealth:
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
