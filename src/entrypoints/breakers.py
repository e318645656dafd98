"""One circuit breaker per port's dependency, built from settings.

The breakers are held by port (``vector_index``, ``database``, ``chat_model``,
``embedder``); :data:`CIRCUIT_NAMES` is the one place that says what each circuit is
called where a client sees it: ``GET /health/circuits``, ``/health``'s components,
an answer's ``degraded`` list, a 503's dependency and the metrics' ``dependency``
label. Those keep the names the original frontend and docs show (``qdrant``,
``openai``, and the database's own: ``postgres`` or ``sqlite``), whatever adapter
serves the port. The embedder and the chat model share one circuit, as they share
the OpenAI-compatible server (an answer names it once).

State is per process: each replica has its own breakers."""

from __future__ import annotations

import attrs

from adapters.resilience import Breaker
from adapters.settings import Settings
from rag_core.errors import DependencyUnavailable
from rag_core.ports import Clock

CIRCUIT_NAMES = {"vector_index": "qdrant", "chat_model": "openai", "embedder": "openai"}
"""The public name of each port's circuit; the database's is its dependency name."""


@attrs.frozen(slots=True)
class Breakers:
    vector_index: Breaker
    database: Breaker
    chat_model: Breaker
    embedder: Breaker  # the chat model's breaker (see the module docstring)

    def all(self) -> tuple[Breaker, ...]:
        """Each circuit once, in the order /health/circuits lists them."""
        return (self.chat_model, self.vector_index, self.database)


def counts_as_failure(exc: BaseException) -> bool:
    """What a circuit counts: an unavailable dependency (connection errors,
    timeouts, 5xx, and 429 once the adapter's own retries are spent), never our
    own bad input."""
    return isinstance(exc, DependencyUnavailable)


def make_breakers(settings: Settings, clock: Clock, database: str) -> Breakers:
    """``database`` names the database circuit ("postgres" or "sqlite")."""

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

    models = breaker(
        CIRCUIT_NAMES["chat_model"],
        settings.openai_breaker_threshold,
        settings.openai_breaker_recovery,
    )
    return Breakers(
        vector_index=breaker(
            CIRCUIT_NAMES["vector_index"],
            settings.qdrant_breaker_threshold,
            settings.qdrant_breaker_recovery,
        ),
        database=breaker(
            database, settings.database_breaker_threshold, settings.database_breaker_recovery
        ),
        chat_model=models,
        embedder=models,
    )
