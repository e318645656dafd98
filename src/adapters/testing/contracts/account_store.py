"""The AccountStore contract, run against every adapter.

A subclass provides the ``store`` fixture: a store with no users, profiles or
revoked tokens in it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from rag_core.accounts import AccountStore, Proficiency, Profile, User
from rag_core.errors import Conflict, InvalidInput, NotFound

START = datetime(2025, 1, 1, tzinfo=UTC)
HASH = "$2b$04$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234"


def user(n: int = 1, **changes: object) -> User:
    values: dict[str, object] = {
        "id": f"user-{n:04d}",
        "email": f"reader{n}@example.com",
        "name": f"Reader {n}",
        "proficiency": Proficiency.BEGINNER,
        "created_at": START,
        "updated_at": START,
    }
    values.update(changes)
    return User(**values)  # type: ignore[arg-type]


def is_utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0)


class AccountStoreContract:
    @pytest.fixture
    def store(self) -> AccountStore:
        raise NotImplementedError("a contract subclass provides store")

    async def test_create_then_read_back(self, store: AccountStore) -> None:
        ada = user(name="Ada «Countess» Lovelace 🤖", email="ada.straße@exämple.org")
        await store.create_user(ada, HASH)
        assert await store.get_user(ada.id) == ada
        found = await store.find_credentials(ada.email)
        assert found is not None
        assert found.user == ada and found.password_hash == HASH

    async def test_unknown_users_are_none(self, store: AccountStore) -> None:
        assert await store.get_user("nobody") is None
        assert await store.find_credentials("nobody@example.com") is None

    async def test_datetimes_come_back_in_utc(self, store: AccountStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        local = datetime(2025, 6, 1, 14, 30, 15, 250000, tzinfo=plus_two)
        await store.create_user(user(created_at=local, updated_at=local), HASH)
        stored = await store.get_user(user().id)
        assert stored is not None
        assert stored.created_at == local and is_utc(stored.created_at)
        assert is_utc(stored.updated_at)

    async def test_a_taken_email_or_id_is_a_conflict(self, store: AccountStore) -> None:
        first = user(1)
        await store.create_user(first, HASH)
        with pytest.raises(Conflict):
            await store.create_user(user(2, email=first.email), HASH)
        with pytest.raises(Conflict):
            await store.create_user(user(1, email="other@example.com"), HASH)
        assert await store.get_user(first.id) == first
        assert await store.get_user(user(2).id) is None
        assert await store.find_credentials("other@example.com") is None

    async def test_concurrent_sign_ups_of_one_email_let_exactly_one_win(
        self, store: AccountStore
    ) -> None:
        attempts = [user(n, email="race@example.com") for n in range(6)]
        results = await asyncio.gather(
            *(store.create_user(u, HASH) for u in attempts), return_exceptions=True
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, Conflict) for r in results if r is not None)

    async def test_update_changes_name_proficiency_and_updated_at_only(
        self, store: AccountStore
    ) -> None:
        original = user()
        await store.create_user(original, HASH)
        later = START + timedelta(days=1)
        changed = attrs.evolve(
            original,
            name="Renamed",
            proficiency=Proficiency.PRO,
            updated_at=later,
            email="sneaky@example.com",
            created_at=later,
        )
        await store.update_user(changed)
        stored = await store.get_user(original.id)
        assert stored == attrs.evolve(
            original, name="Renamed", proficiency=Proficiency.PRO, updated_at=later
        )
        credentials = await store.find_credentials(original.email)
        assert credentials is not None and credentials.password_hash == HASH

    async def test_updating_an_unknown_user_is_not_found(self, store: AccountStore) -> None:
        with pytest.raises(NotFound):
            await store.update_user(user())

    async def test_profiles_are_inserted_then_replaced(self, store: AccountStore) -> None:
        await store.create_user(user(1), HASH)
        await store.create_user(user(2), HASH)
        assert await store.get_profile(user(1).id) is None
        first = Profile(
            user(1).id,
            technical_background="Python, some C++ — «ROS 2»",
            hardware_access="Jetson Orin\nRealSense D435",
            learning_goals="walk a humanoid 🤖",
            preferred_language="ur",
            updated_at=START,
        )
        await store.save_profile(first)
        assert await store.get_profile(first.user_id) == first
        second = attrs.evolve(first, learning_goals="", updated_at=START + timedelta(hours=1))
        await store.save_profile(second)
        stored = await store.get_profile(first.user_id)
        assert stored == second and is_utc(stored.updated_at)
        assert await store.get_profile(user(2).id) is None

    async def test_a_profile_without_a_time_is_kept_as_is(self, store: AccountStore) -> None:
        await store.create_user(user(), HASH)
        await store.save_profile(Profile(user().id))
        assert await store.get_profile(user().id) == Profile(user().id)

    async def test_a_profile_needs_a_known_user(self, store: AccountStore) -> None:
        with pytest.raises(NotFound):
            await store.save_profile(Profile("nobody", learning_goals="x", updated_at=START))
        assert await store.get_profile("nobody") is None

    async def test_revocation_is_remembered_and_idempotent(self, store: AccountStore) -> None:
        assert not await store.is_revoked("token-1")
        await store.revoke_token("token-1", START)
        await store.revoke_token("token-1", START)
        assert await store.is_revoked("token-1")
        assert not await store.is_revoked("token-2")

    async def test_purge_forgets_only_what_expired_before_the_cutoff(
        self, store: AccountStore
    ) -> None:
        for n in range(4):
            await store.revoke_token(f"token-{n}", START + timedelta(hours=n))
        assert await store.purge_revoked(START + timedelta(hours=2)) == 2
        assert [await store.is_revoked(f"token-{n}") for n in range(4)] == [
            False,
            False,
            True,
            True,
        ]
        assert await store.purge_revoked(START) == 0

    async def test_naive_datetimes_are_refused(self, store: AccountStore) -> None:
        naive = datetime(2025, 1, 1)
        with pytest.raises(InvalidInput):
            await store.create_user(user(created_at=naive), HASH)
        assert await store.get_user(user().id) is None
        await store.create_user(user(), HASH)
        with pytest.raises(InvalidInput):
            await store.update_user(user(updated_at=naive))
        with pytest.raises(InvalidInput):
            await store.save_profile(Profile(user().id, updated_at=naive))
        with pytest.raises(InvalidInput):
            await store.revoke_token("token-1", naive)
        with pytest.raises(InvalidInput):
            await store.purge_revoked(naive)

    async def test_probe_answers(self, store: AccountStore) -> None:
        await store.probe()
