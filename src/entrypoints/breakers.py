"""One circuit breaker per outside dependency, built from settings.

State is per process: each replica has its own breakers."""

from __future__ import annotations

import attrs

from adapters.resilience import Breaker
from adapters.settings import Settings
from rag_core.errors import DependencyUnavailable
from rag_core.ports import Clock


@attrs.frozen(slots=True)
class Breakers:
    openai: Breaker
    qdrant: Breaker
    database: Breaker

    def all(self) -> tuple[Breaker, ...]:
        return (self.openai, self.qdrant, self.database)


def counts_as_failure(exc: BaseException) -> bool:
    """What a circuit counts: an unavailable dependency (connection errors,
    timeouts, 5xx, and 429 once the adapter's own retries are spent), never our
    own bad input."""
    return isinstance(exc, DependencyUnavailable)


def make_breakers(settings: Settings, clock: Clock, database: str) -> Breakers:
    """``database`` names the database breaker ("postgres" or "sqlite")."""

    def breaker(name: str, threshold: int, recovery: float) -> Breaker:
        return Breaker(
            name,
            failure_threshold=threshold,
            recovery_timeout=recovery,
            half_open_max_calls=settings.breaker_half_open_calls,
            counts=counts_as_failure,
            clock=clock.monotonic,
            now=clock.now,
        )

    return Breakers(
        openai=breaker(
            "openai", settings.openai_breaker_threshold, settings.openai_breaker_recovery
        ),
        qdrant=breaker(
            "qdrant", settings.qdrant_breaker_threshold, settings.qdrant_breaker_recovery
        ),
        database=breaker(
            database, settings.database_breaker_threshold, settings.database_breaker_recovery
        ),
    )
