"""Health of components and its aggregation (Kubernetes / Spring Boot practice).

Any critical ``fail`` makes the whole unhealthy; any ``warn``, or a ``fail`` of
an optional component, makes it degraded; otherwise it is healthy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Literal, get_args

import attrs


class Status(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class Overall(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


CircuitState = Literal["closed", "open", "half_open"]
"""A circuit breaker's state, as breakers report it and health and metrics read it."""
CIRCUIT_STATES: tuple[CircuitState, ...] = get_args(CircuitState)

_CIRCUIT_STATUS: dict[str, Status] = {
    "closed": Status.PASS,
    "half_open": Status.WARN,
    "open": Status.FAIL,
}


def status_of_circuit(state: str) -> Status:
    """closed -> pass, half_open -> warn, open -> fail."""
    return _CIRCUIT_STATUS[state]


@attrs.frozen(slots=True)
class ComponentHealth:
    """The last known health of one component.

    ``error`` is an error class name, never a message that could hold a secret.
    """

    name: str
    status: Status
    critical: bool
    detail: str = ""
    latency_ms: float | None = None
    error: str | None = None
    checked_at: datetime | None = None
    circuit_state: str | None = None


@attrs.frozen(slots=True)
class HealthReport:
    status: Overall
    components: tuple[ComponentHealth, ...]


def aggregate(components: Iterable[ComponentHealth]) -> HealthReport:
    """Fold component results into one report."""
    items = tuple(components)
    if any(c.status is Status.FAIL and c.critical for c in items):
        overall = Overall.UNHEALTHY
    elif any(c.status is not Status.PASS for c in items):
        overall = Overall.DEGRADED
    else:
        overall = Overall.HEALTHY
    return HealthReport(status=overall, components=items)
