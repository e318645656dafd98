"""The AccountStore on SQL (PostgreSQL or SQLite) through SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from adapters.sql.engine import DEFAULT_CALL_TIMEOUT, run_sql
from adapters.sql.schema import auth_profiles, auth_revoked_tokens, auth_users
from rag_core.accounts import Credentials, Proficiency, Profile, User
from rag_core.errors import Conflict, InvalidInput, NotFound

T = TypeVar("T")

_PROFILE_FIELDS = (
    "technical_background",
    "hardware_access",
    "learning_goals",
    "preferred_language",
)


class SqlAccountStore:
    """Users in ``auth_users``, profiles in ``auth_profiles``, signed-out token ids
    in ``auth_revoked_tokens`` (see :mod:`adapters.sql.schema`; run
    :func:`adapters.sql.engine.prepare_schema` first).

    Implements :class:`rag_core.accounts.AccountStore`: a taken email or id raises
    Conflict (the unique constraint decides, so concurrent sign-ups cannot both
    win); updating an unknown user, or saving the profile of one, raises NotFound.
    Only name, proficiency and updated_at of a user can change. A naive datetime
    raises InvalidInput; datetimes come back timezone-aware in UTC.

    Blocking work runs in a worker thread. Connection failures, timeouts and an
    exhausted pool raise ``DependencyUnavailable(dependency, <error class name>)``.
    Supports the ``postgresql`` and ``sqlite`` dialects (else ``ValueError``).
    """

    def __init__(
        self, engine: Engine, *, dependency: str = "database", timeout: float = DEFAULT_CALL_TIMEOUT
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported SQL dialect {engine.dialect.name!r}")
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._dependency = dependency
        self._timeout = timeout

    async def create_user(self, user: User, password_hash: str) -> None:
        _require_aware(user.created_at, user.updated_at)
        row = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "password_hash": password_hash,
            "proficiency": user.proficiency.value,
            "email_verified": user.email_verified,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }

        def work(connection: Connection) -> None:
            connection.execute(auth_users.insert(), row)

        try:
            await self._run(work)
        except IntegrityError:
            raise Conflict("an account with this email already exists") from None

    async def get_user(self, user_id: str) -> User | None:
        query = select(auth_users).where(auth_users.c.id == user_id)

        def work(connection: Connection) -> User | None:
            row = connection.execute(query).first()
            return None if row is None else _user(row)

        return await self._run(work)

    async def find_credentials(self, email: str) -> Credentials | None:
        query = select(auth_users).where(auth_users.c.email == email)

        def work(connection: Connection) -> Credentials | None:
            row = connection.execute(query).first()
            return None if row is None else Credentials(_user(row), row.password_hash)

        return await self._run(work)

    async def update_user(self, user: User) -> None:
        _require_aware(user.updated_at)
        statement = (
            update(auth_users)
            .where(auth_users.c.id == user.id)
            .values(name=user.name, proficiency=user.proficiency.value, updated_at=user.updated_at)
        )

        def work(connection: Connection) -> None:
            if connection.execute(statement).rowcount == 0:
                raise NotFound(f"no user {user.id!r}")

        await self._run(work)

    async def get_profile(self, user_id: str) -> Profile | None:
        query = select(auth_profiles).where(auth_profiles.c.user_id == user_id)

        def work(connection: Connection) -> Profile | None:
            row = connection.execute(query).first()
            return None if row is None else _profile(row)

        return await self._run(work)

    async def save_profile(self, profile: Profile) -> None:
        if profile.updated_at is not None:
            _require_aware(profile.updated_at)
        values = {field: getattr(profile, field) for field in _PROFILE_FIELDS}
        values["updated_at"] = profile.updated_at
        statement = (
            self._dialect.insert(auth_profiles)
            .values(user_id=profile.user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )
        exists = select(auth_users.c.id).where(auth_users.c.id == profile.user_id)

        def work(connection: Connection) -> None:
            if connection.execute(exists).first() is None:
                raise NotFound(f"no user {profile.user_id!r}")
            connection.execute(statement)

        try:
            await self._run(work)
        except IntegrityError:  # the user went away between the check and the write
            raise NotFound(f"no user {profile.user_id!r}") from None

    async def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        _require_aware(expires_at)
        statement = (
            self._dialect.insert(auth_revoked_tokens)
            .values(token_id=token_id, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["token_id"])
        )

        def work(connection: Connection) -> None:
            connection.execute(statement)

        await self._run(work)

    async def is_revoked(self, token_id: str) -> bool:
        query = select(auth_revoked_tokens.c.token_id).where(
            auth_revoked_tokens.c.token_id == token_id
        )

        def work(connection: Connection) -> bool:
            return connection.execute(query).first() is not None

        return await self._run(work)

    async def purge_revoked(self, expired_before: datetime) -> int:
        _require_aware(expired_before)
        statement = delete(auth_revoked_tokens).where(
            auth_revoked_tokens.c.expires_at < expired_before
        )

        def work(connection: Connection) -> int:
            return int(connection.execute(statement).rowcount)

        return await self._run(work)

    async def probe(self) -> None:
        def work(connection: Connection) -> None:
            connection.execute(text("SELECT 1"))

        await self._run(work)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await run_sql(self._engine, self._dependency, work, seconds=self._timeout)


def _require_aware(*moments: datetime) -> None:
    if any(moment.utcoffset() is None for moment in moments):
        raise InvalidInput("datetimes must be timezone-aware")


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        proficiency=Proficiency(row.proficiency),
        created_at=row.created_at,
        updated_at=row.updated_at,
        email_verified=bool(row.email_verified),
    )


def _profile(row: Row[Any]) -> Profile:
    return Profile(
        user_id=row.user_id,
        updated_at=row.updated_at,
        **{field: getattr(row, field) for field in _PROFILE_FIELDS},
    )
