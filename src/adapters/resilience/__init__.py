"""Resilience for outside calls: a circuit breaker per dependency and port decorators."""

from adapters.resilience.breaker import Breaker, BreakerState, CircuitOpen
from adapters.resilience.guarded import (
    GuardedChatModel,
    GuardedConversationStore,
    GuardedEmbedder,
    GuardedIndex,
)

__all__ = [
    "Breaker",
    "BreakerState",
    "CircuitOpen",
    "GuardedChatModel",
    "GuardedConversationStore",
    "GuardedEmbedder",
    "GuardedIndex",
]
