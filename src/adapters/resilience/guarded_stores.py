"""The database's other stores behind the database breaker: accounts and the
content cache share PostgreSQL with the conversations, so one circuit covers
them all and an outage fails fast everywhere (see guarded.py for the pattern)."""

from __future__ import annotations

from datetime import datetime

from adapters.resilience.breaker import Breaker
from rag_core.accounts import AccountStore, Credentials, Profile, User
from rag_core.transforms import ContentCache


class GuardedAccountStore:
    """An :class:`~rag_core.accounts.AccountStore` whose calls go through ``breaker``."""

    def __init__(self, inner: AccountStore, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    async def create_user(self, user: User, password_hash: str) -> None:
        await self._breaker.call(lambda: self._inner.create_user(user, password_hash))

    async def get_user(self, user_id: str) -> User | None:
        return await self._breaker.call(lambda: self._inner.get_user(user_id))

    async def find_credentials(self, email: str) -> Credentials | None:
        return await self._breaker.call(lambda: self._inner.find_credentials(email))

    async def update_user(self, user: User) -> None:
        await self._breaker.call(lambda: self._inner.update_user(user))

    async def get_profile(self, user_id: str) -> Profile | None:
        return await self._breaker.call(lambda: self._inner.get_profile(user_id))

    async def save_profile(self, profile: Profile) -> None:
        await self._breaker.call(lambda: self._inner.save_profile(profile))

    async def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        await self._breaker.call(lambda: self._inner.revoke_token(token_id, expires_at))

    async def is_revoked(self, token_id: str) -> bool:
        return await self._breaker.call(lambda: self._inner.is_revoked(token_id))

    async def purge_revoked(self, expired_before: datetime) -> int:
        return await self._breaker.call(lambda: self._inner.purge_revoked(expired_before))

    async def probe(self) -> None:
        await self._breaker.probe(self._inner.probe)


class GuardedContentCache:
    """A :class:`~rag_core.transforms.ContentCache` whose calls go through ``breaker``."""

    def __init__(self, inner: ContentCache, breaker: Breaker) -> None:
        self._inner = inner
        self._breaker = breaker

    async def get(self, key: str) -> str | None:
        return await self._breaker.call(lambda: self._inner.get(key))

    async def put(self, key: str, value: str) -> None:
        await self._breaker.call(lambda: self._inner.put(key, value))

    async def probe(self) -> None:
        await self._breaker.probe(self._inner.probe)
