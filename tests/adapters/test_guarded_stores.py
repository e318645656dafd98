"""The account store and content cache behind the database breaker: the same
contracts as the stores they wrap, and refused at once while the circuit is open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.memory.accounts import InMemoryAccountStore
from adapters.memory.content_cache import InMemoryContentCache
from adapters.resilience import Breaker, CircuitOpen, GuardedAccountStore, GuardedContentCache
from adapters.testing.contracts.account_store import AccountStoreContract
from adapters.testing.contracts.content_cache import ContentCacheContract
from rag_core.errors import DependencyUnavailable


def breaker() -> Breaker:
    return Breaker(
        "postgres",
        failure_threshold=1,
        recovery_timeout=30,
        counts=lambda exc: isinstance(exc, DependencyUnavailable),
    )


class TestGuardedAccountStore(AccountStoreContract):
    @pytest.fixture
    def store(self) -> GuardedAccountStore:
        return GuardedAccountStore(InMemoryAccountStore(), breaker())


class TestGuardedContentCache(ContentCacheContract):
    @pytest.fixture
    def cache(self) -> GuardedContentCache:
        return GuardedContentCache(InMemoryContentCache(), breaker())


class DownAccounts(InMemoryAccountStore):
    calls = 0

    async def is_revoked(self, token_id: str) -> bool:
        self.calls += 1
        raise DependencyUnavailable("postgres", "Timeout")


async def test_an_open_circuit_refuses_account_calls_without_calling_the_store() -> None:
    inner = DownAccounts()
    store = GuardedAccountStore(inner, breaker())
    with pytest.raises(DependencyUnavailable):
        await store.is_revoked("t1")  # counted: the circuit opens (threshold 1)
    with pytest.raises(CircuitOpen):
        await store.is_revoked("t2")
    with pytest.raises(CircuitOpen):
        await store.purge_revoked(datetime.now(UTC))
    assert inner.calls == 1
