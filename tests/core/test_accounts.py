"""AccountService over the in-memory store, a fake hasher and a fake authenticator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.accounts import InMemoryAccountStore
from rag_core.account_input import normalise_email
from rag_core.accounts import (
    BAD_CREDENTIALS,
    AccountService,
    IssuedToken,
    Proficiency,
    Profile,
    TokenClaims,
)
from rag_core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from rag_core.testing import FakeClock, SequentialIds

START = datetime(2025, 1, 1, tzinfo=UTC)
PASSWORD = "correct horse battery"


class RecordingHasher:
    """Reversible "hashes", and a record of every check (to see the dummy one)."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    async def verify(self, password: str, password_hash: str) -> bool:
        self.checked.append(password_hash)
        return password_hash == f"hashed:{password}"


class TableAuthenticator:
    """Tokens are opaque names for claims kept in a table."""

    def __init__(self) -> None:
        self.issued: dict[str, TokenClaims] = {}

    def issue(self, subject: str, *, authenticated_at: datetime | None = None) -> IssuedToken:
        token_id = f"jti-{len(self.issued) + 1}"
        claims = TokenClaims(subject, token_id, START + timedelta(days=7))
        self.issued[f"token-{token_id}"] = claims
        return IssuedToken(f"token-{token_id}", token_id, claims.expires_at)

    def verify(self, token: str) -> TokenClaims:
        if token not in self.issued:
            raise Unauthenticated("invalid or expired token")
        return self.issued[token]


@pytest.fixture
def store() -> InMemoryAccountStore:
    return InMemoryAccountStore()


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def tokens() -> TableAuthenticator:
    return TableAuthenticator()


@pytest.fixture
def service(
    store: InMemoryAccountStore, hasher: RecordingHasher, tokens: TableAuthenticator
) -> AccountService:
    return AccountService(
        store, tokens, hasher, FakeClock(START, step=1.0), SequentialIds("user-", width=1)
    )


async def test_sign_up_normalises_and_signs_in(service: AccountService) -> None:
    signed = await service.sign_up("  Ada@Example.COM ", "  Ada  ", PASSWORD)
    assert signed.user.email == "ada@example.com"
    assert signed.user.name == "Ada"
    assert signed.user.proficiency is Proficiency.BEGINNER
    assert not signed.user.email_verified
    assert signed.user.created_at == signed.user.updated_at
    principal = await service.authenticate(signed.token.value)
    assert principal.user == signed.user
    assert principal.user_id == signed.user.id
    assert principal.token_id == signed.token.token_id


async def test_a_taken_email_is_a_conflict_whatever_its_case(service: AccountService) -> None:
    await service.sign_up("ada@example.com", "Ada", PASSWORD, Proficiency.PRO)
    with pytest.raises(Conflict):
        await service.sign_up(" ADA@example.com", "Impostor", "another password")


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        ("not-an-email", "Ada", PASSWORD),
        ("a@b@example.com", "Ada", PASSWORD),
        ("ada@localhost", "Ada", PASSWORD),
        ("ada @example.com", "Ada", PASSWORD),
        ("ada@exa\x00mple.com", "Ada", PASSWORD),
        ("x" * 65 + "@example.com", "Ada", PASSWORD),
        ("ada@" + "d" * 250 + ".com", "Ada", PASSWORD),
        ("ada@example.com", "   ", PASSWORD),
        ("ada@example.com", "A" * 101, PASSWORD),
        ("ada@example.com", "Ada\nLovelace", PASSWORD),
        ("ada@example.com", "Ada", "short"),
        ("ada@example.com", "Ada", "é" * 37),  # 37 characters, 74 bytes
        ("ada@example.com", "Ada", "password\ud800"),
    ],
)
async def test_sign_up_refuses_bad_input(
    service: AccountService, email: str, name: str, password: str
) -> None:
    with pytest.raises(InvalidInput):
        await service.sign_up(email, name, password)


async def test_sign_in_accepts_the_email_in_any_case(service: AccountService) -> None:
    up = await service.sign_up("ada@example.com", "Ada", PASSWORD)
    signed = await service.sign_in("  ADA@Example.com", PASSWORD)
    assert signed.user == up.user
    assert signed.token.token_id != up.token.token_id


async def test_unknown_email_and_wrong_password_fail_alike(
    service: AccountService, hasher: RecordingHasher
) -> None:
    await service.sign_up("ada@example.com", "Ada", PASSWORD)
    failures = []
    for email, password in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ]:
        hasher.checked.clear()
        with pytest.raises(Unauthenticated) as caught:
            await service.sign_in(email, password)
        failures.append(str(caught.value))
        assert len(hasher.checked) == 1  # a (dummy) hash is checked every time
    assert failures == [BAD_CREDENTIALS] * 3


async def test_the_dummy_hash_is_made_once(
    service: AccountService, hasher: RecordingHasher
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await service.sign_in("nobody@example.com", PASSWORD)
    assert len(set(hasher.checked)) == 1


async def test_unknown_tokens_and_vanished_users_are_unauthenticated(
    service: AccountService, tokens: TableAuthenticator
) -> None:
    with pytest.raises(Unauthenticated):
        await service.authenticate("forged")
    ghost = tokens.issue("no-such-user")
    with pytest.raises(Unauthenticated):
        await service.authenticate(ghost.value)


async def test_sign_out_revokes_only_that_token(service: AccountService) -> None:
    first = await service.sign_up("ada@example.com", "Ada", PASSWORD)
    second = await service.sign_in("ada@example.com", PASSWORD)
    await service.sign_out(await service.authenticate(first.token.value))
    with pytest.raises(Unauthenticated):
        await service.authenticate(first.token.value)
    assert (await service.authenticate(second.token.value)).user_id == first.user.id


async def test_sign_out_forgets_revocations_that_expired(
    service: AccountService, store: InMemoryAccountStore
) -> None:
    await store.revoke_token("long-expired", START - timedelta(days=30))
    signed = await service.sign_up("ada@example.com", "Ada", PASSWORD)
    await service.sign_out(await service.authenticate(signed.token.value))
    assert not await store.is_revoked("long-expired")
    assert await store.is_revoked(signed.token.token_id)


async def test_profile_updates_merge_and_set_proficiency(service: AccountService) -> None:
    user = (await service.sign_up("ada@example.com", "Ada", PASSWORD)).user
    assert await service.get_profile(user.id) is None

    first = await service.update_profile(
        user.id, technical_background="Python", hardware_access="Jetson"
    )
    second = await service.update_profile(
        user.id, learning_goals="SLAM", proficiency=Proficiency.INTERMEDIATE
    )
    assert second == Profile(
        user.id,
        technical_background="Python",
        hardware_access="Jetson",
        learning_goals="SLAM",
        updated_at=second.updated_at,
    )
    assert second.updated_at is not None and first.updated_at is not None
    assert second.updated_at > first.updated_at
    assert await service.get_profile(user.id) == second
    signed = await service.sign_in("ada@example.com", PASSWORD)
    assert signed.user.proficiency is Proficiency.INTERMEDIATE
    assert signed.user.updated_at > user.updated_at


@pytest.mark.parametrize("value", ["x" * 2001, "nul\x00byte", "lone \udc80 surrogate"])
async def test_profile_fields_are_checked(service: AccountService, value: str) -> None:
    user = (await service.sign_up("ada@example.com", "Ada", PASSWORD)).user
    with pytest.raises(InvalidInput):
        await service.update_profile(user.id, learning_goals=value)
    assert await service.get_profile(user.id) is None


async def test_the_profile_of_an_unknown_user_is_not_found(service: AccountService) -> None:
    with pytest.raises(NotFound):
        await service.update_profile("nobody", learning_goals="x", proficiency=Proficiency.PRO)


def test_normalise_email_is_idempotent() -> None:
    once = normalise_email("  Straße@Example.ORG ")
    assert once == "strasse@example.org"
    assert normalise_email(once) == once
