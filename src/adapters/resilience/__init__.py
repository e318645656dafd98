"""Resilience for outside calls: a circuit breaker per dependency, and one decorator
that puts it in front of any port (:func:`guard`)."""

from adapters.resilience.breaker import Breaker, BreakerState, CircuitOpen
from adapters.resilience.guarded import (
    Guarded,
    GuardedAccountStore,
    GuardedChatModel,
    GuardedContentCache,
    GuardedConversationStore,
    GuardedEmbedder,
    GuardedIndex,
    guard,
)

__all__ = [
    "Breaker",
    "BreakerState",
    "CircuitOpen",
    "Guarded",
    "GuardedAccountStore",
    "GuardedChatModel",
    "GuardedContentCache",
    "GuardedConversationStore",
    "GuardedEmbedder",
    "GuardedIndex",
    "guard",
]
