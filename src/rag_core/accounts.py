"""Accounts: users, their profiles, and signing in with bearer tokens.

A failed sign-in never says whether the email exists: unknown emails and wrong
passwords raise the same :class:`Unauthenticated`, after the same kind of
password check (a dummy hash is checked for an unknown email).
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from rag_core.account_input import (
    check_name,
    check_password,
    check_profile_text,
    normalise_email,
)
from rag_core.errors import DependencyUnavailable, InvalidInput, Unauthenticated
from rag_core.ports import Clock, IdGenerator

BAD_CREDENTIALS = "invalid email or password"
BAD_TOKEN = "invalid or expired token"


class Proficiency(enum.StrEnum):
    """A reader's level: an account's, and the target of adjusted content (``pro``
    reads the text as written)."""

    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    PRO = "pro"


RECENT_SECONDS = 15 * 60  # how long a verified token outlives a database outage
RECENT_MAX = 10_000
MAX_SESSION = timedelta(days=7)
"""Renewals never carry a sign-in further than this: then the reader signs in again."""


@attrs.frozen(slots=True)
class User:
    """An account. ``email`` is normalised (stripped, case-folded) and unique."""

    id: str
    email: str
    name: str
    proficiency: Proficiency
    created_at: datetime
    updated_at: datetime
    email_verified: bool = False


@attrs.frozen(slots=True)
class Profile:
    """What a reader told us about themselves, to personalise answers and content."""

    user_id: str
    technical_background: str = ""
    hardware_access: str = ""
    learning_goals: str = ""
    preferred_language: str = ""
    updated_at: datetime | None = None


@attrs.frozen(slots=True)
class IssuedToken:
    """A signed bearer token; ``token_id`` (the JWT ``jti``) is what sign-out revokes."""

    value: str
    token_id: str
    expires_at: datetime


@attrs.frozen(slots=True)
class TokenClaims:
    """``issued_at`` and ``authenticated_at`` (the sign-in the token descends from)
    are None when the authenticator does not know them: such a token is not renewed."""

    subject: str
    token_id: str
    expires_at: datetime
    issued_at: datetime | None = None
    authenticated_at: datetime | None = None


@attrs.frozen(slots=True)
class Principal:
    """Who is calling: a signed-in user and the token they presented."""

    user: User
    token_id: str
    expires_at: datetime
    issued_at: datetime | None = None
    authenticated_at: datetime | None = None

    @property
    def user_id(self) -> str:
        return self.user.id


@attrs.frozen(slots=True)
class SignedIn:
    user: User
    token: IssuedToken


@attrs.frozen(slots=True)
class Credentials:
    user: User
    password_hash: str


class AccountStore(Protocol):
    """Persists users, profiles and revoked token ids. Every method may raise
    DependencyUnavailable; datetimes come back timezone-aware (UTC)."""

    async def create_user(self, user: User, password_hash: str) -> None:
        """Store a new user; raises Conflict if the email or id is taken."""
        ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_credentials(self, email: str) -> Credentials | None:
        """The user with this (normalised) email and their password hash."""
        ...

    async def update_user(self, user: User) -> None:
        """Replace name, proficiency and updated_at; raises NotFound for an unknown id."""
        ...

    async def get_profile(self, user_id: str) -> Profile | None: ...

    async def save_profile(self, profile: Profile) -> None:
        """Insert or replace the user's profile; raises NotFound for an unknown user."""
        ...

    async def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        """Remember a revoked token until it expires (idempotent)."""
        ...

    async def is_revoked(self, token_id: str) -> bool: ...

    async def purge_revoked(self, expired_before: datetime) -> int:
        """Forget revoked tokens that expired before the given time; returns how many."""
        ...

    async def probe(self) -> None: ...


class Authenticator(Protocol):
    """Issues and verifies signed bearer tokens (pure computation, no I/O)."""

    def issue(self, subject: str, *, authenticated_at: datetime | None = None) -> IssuedToken:
        """A token for ``subject``; ``authenticated_at`` (a renewal's) is the sign-in it
        descends from, the issue time when None."""
        ...

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; raises Unauthenticated for any token it did not
        issue unaltered or that has expired. Revocation is not its concern."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing; both methods run off the event loop."""

    async def hash(self, password: str) -> str:
        """Raises InvalidInput for a password the scheme cannot hash in full."""
        ...

    async def verify(self, password: str, password_hash: str) -> bool:
        """False for a wrong password or a malformed hash, never an error."""
        ...


class AccountService:
    """Sign-up, sign-in, sign-out, token authentication and profiles."""

    def __init__(
        self,
        store: AccountStore,
        authenticator: Authenticator,
        passwords: PasswordHasher,
        clock: Clock,
        ids: IdGenerator,
        *,
        max_session: timedelta = MAX_SESSION,
    ) -> None:
        self._store = store
        self._max_session = max_session
        self._authenticator = authenticator
        self._passwords = passwords
        self._clock = clock
        self._ids = ids
        self._dummy_hash: str | None = None
        # token id -> (principal, when it was last verified against the store)
        self._recent: dict[str, tuple[Principal, float]] = {}

    async def sign_up(
        self,
        email: str,
        name: str,
        password: str,
        proficiency: Proficiency = Proficiency.BEGINNER,
    ) -> SignedIn:
        """Raises InvalidInput for a bad email, name or password, Conflict for a taken email."""
        address, name = normalise_email(email), check_name(name)
        check_password(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        user = User(self._ids.new_id(), address, name, proficiency, now, now)
        await self._store.create_user(user, password_hash)
        return SignedIn(user, self._authenticator.issue(user.id))

    async def sign_in(self, email: str, password: str) -> SignedIn:
        """Raises Unauthenticated with the same message whatever was wrong."""
        try:
            found = await self._store.find_credentials(normalise_email(email))
        except InvalidInput:
            found = None
        if found is None:
            # Same work as for a known email, so timing does not tell them apart.
            await self._passwords.verify(password, await self._dummy())
            raise Unauthenticated(BAD_CREDENTIALS)
        if not await self._passwords.verify(password, found.password_hash):
            raise Unauthenticated(BAD_CREDENTIALS)
        return SignedIn(found.user, self._authenticator.issue(found.user.id))

    async def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token; Unauthenticated if it is invalid,
        expired, revoked, or its user no longer exists.

        If the store is unavailable, a token this process verified against the
        store within ``RECENT_SECONDS`` still authenticates (signed-in readers keep
        chatting through a database outage); any other raises DependencyUnavailable.
        """
        claims = self._authenticator.verify(token)
        try:
            revoked = await self._store.is_revoked(claims.token_id)
            user = None if revoked else await self._store.get_user(claims.subject)
        except DependencyUnavailable:
            recent = self._recent.get(claims.token_id)
            if recent is None or self._clock.monotonic() - recent[1] > RECENT_SECONDS:
                raise
            return recent[0]
        if user is None:
            self._recent.pop(claims.token_id, None)
            raise Unauthenticated(BAD_TOKEN)
        principal = Principal(
            user, claims.token_id, claims.expires_at, claims.issued_at, claims.authenticated_at
        )
        self._remember(principal)
        return principal

    def _remember(self, principal: Principal) -> None:
        if len(self._recent) >= RECENT_MAX:
            self._recent.pop(next(iter(self._recent)))  # the oldest entry
        self._recent.pop(principal.token_id, None)
        self._recent[principal.token_id] = (principal, self._clock.monotonic())

    def renew(self, principal: Principal) -> IssuedToken | None:
        """A fresh token for a principal whose token is past half its life, or None
        (young enough; its dates unknown; or its sign-in ``max_session`` ago, when only
        signing in again helps). The fresh token descends from the same sign-in; the
        old one is not revoked (another tab may still send it) and expires on its own.
        No I/O: ``principal`` has been authenticated."""
        issued, expires = principal.issued_at, principal.expires_at
        if issued is None:
            return None
        now = self._clock.now()
        if now < issued + (expires - issued) / 2:
            return None
        signed_in = principal.authenticated_at or issued
        if now - signed_in >= self._max_session:
            return None
        return self._authenticator.issue(principal.user_id, authenticated_at=signed_in)

    async def sign_out(self, principal: Principal) -> None:
        """The principal's token stops working; long-expired revocations are forgotten."""
        self._recent.pop(principal.token_id, None)
        await self._store.revoke_token(principal.token_id, principal.expires_at)
        await self._store.purge_revoked(self._clock.now())

    async def get_profile(self, user_id: str) -> Profile | None:
        return await self._store.get_profile(user_id)

    async def update_profile(
        self,
        user_id: str,
        *,
        technical_background: str | None = None,
        hardware_access: str | None = None,
        learning_goals: str | None = None,
        preferred_language: str | None = None,
        proficiency: Proficiency | None = None,
    ) -> Profile:
        """Change the given fields (None keeps a field); NotFound for an unknown user."""
        changes = {
            "technical_background": technical_background,
            "hardware_access": hardware_access,
            "learning_goals": learning_goals,
            "preferred_language": preferred_language,
        }
        given = {field: value for field, value in changes.items() if value is not None}
        for value in given.values():
            check_profile_text(value)
        now = self._clock.now()
        if proficiency is not None:
            user = await self._store.get_user(user_id)
            if user is not None and user.proficiency is not proficiency:
                await self._store.update_user(
                    attrs.evolve(user, proficiency=proficiency, updated_at=now)
                )
        current = await self._store.get_profile(user_id) or Profile(user_id)
        profile = attrs.evolve(current, **given, updated_at=now)
        await self._store.save_profile(profile)
        return profile

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._passwords.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
