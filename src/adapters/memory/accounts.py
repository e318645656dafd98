"""An in-memory AccountStore: the same contract as the SQL adapter, for tests and
for projects that embed the core. Lost when the process ends."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from rag_core.accounts import Credentials, Profile, User
from rag_core.errors import Conflict, InvalidInput, NotFound


class InMemoryAccountStore:
    """Implements :class:`rag_core.accounts.AccountStore` exactly as
    :class:`adapters.sql.accounts.SqlAccountStore` does.

    A taken email or id raises Conflict; updating an unknown user, or saving the
    profile of one, raises NotFound. Only name, proficiency and updated_at of a
    user can change. A naive datetime raises InvalidInput; datetimes come back
    timezone-aware in UTC. Never raises DependencyUnavailable.
    """

    def __init__(self) -> None:
        self._users: dict[str, Credentials] = {}
        self._by_email: dict[str, str] = {}
        self._profiles: dict[str, Profile] = {}
        self._revoked: dict[str, datetime] = {}

    async def create_user(self, user: User, password_hash: str) -> None:
        if user.id in self._users or user.email in self._by_email:
            raise Conflict("an account with this email already exists")
        self._users[user.id] = Credentials(_utc_user(user), password_hash)
        self._by_email[user.email] = user.id

    async def get_user(self, user_id: str) -> User | None:
        found = self._users.get(user_id)
        return None if found is None else found.user

    async def find_credentials(self, email: str) -> Credentials | None:
        user_id = self._by_email.get(email)
        return None if user_id is None else self._users[user_id]

    async def update_user(self, user: User) -> None:
        found = self._users.get(user.id)
        if found is None:
            raise NotFound(f"no user {user.id!r}")
        changed = attrs.evolve(
            found.user,
            name=user.name,
            proficiency=user.proficiency,
            updated_at=_utc(user.updated_at),
        )
        self._users[user.id] = attrs.evolve(found, user=changed)

    async def get_profile(self, user_id: str) -> Profile | None:
        return self._profiles.get(user_id)

    async def save_profile(self, profile: Profile) -> None:
        if profile.user_id not in self._users:
            raise NotFound(f"no user {profile.user_id!r}")
        updated_at = _utc(profile.updated_at) if profile.updated_at else None
        self._profiles[profile.user_id] = attrs.evolve(profile, updated_at=updated_at)

    async def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        self._revoked.setdefault(token_id, _utc(expires_at))

    async def is_revoked(self, token_id: str) -> bool:
        return token_id in self._revoked

    async def purge_revoked(self, expired_before: datetime) -> int:
        cutoff = _utc(expired_before)
        expired = [t for t, expires in self._revoked.items() if expires < cutoff]
        for token_id in expired:
            del self._revoked[token_id]
        return len(expired)

    async def probe(self) -> None:
        return None


def _utc_user(user: User) -> User:
    return attrs.evolve(user, created_at=_utc(user.created_at), updated_at=_utc(user.updated_at))


def _utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return moment.astimezone(UTC)
