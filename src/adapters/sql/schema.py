"""The relational schema: every table the SQL adapters use, in one MetaData.

Written for PostgreSQL and SQLite alike (SQLAlchemy Core, no dialect-only types).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

# Named constraints keep future migrations deterministic on both dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LENGTH = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    Naive datetimes are refused on the way in (``ValueError``): their zone is a guess.
    SQLite keeps no zone, so what it returns is naive UTC and gets UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: a timezone-aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("title", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    # Serves both "sessions of a user" and the most-recently-updated-first listing.
    Index(None, "user_id", "updated_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    # The insertion sequence orders a session's messages; created_at may tie or come
    # from another clock (a retried turn). SQLite only autoincrements INTEGER keys.
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("id", String(ID_LENGTH), nullable=False, unique=True),
    Column(
        "session_id",
        String(ID_LENGTH),
        ForeignKey("chat_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("selected_text", Text, nullable=False, default=""),
    Column("sources", Text, nullable=False, default="[]"),  # JSON list of citations
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "session_id", "seq"),
)

auth_users = Table(
    "auth_users",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # normalised: stripped, casefolded
    Column("name", String(100), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("proficiency", String(16), nullable=False),
    Column("email_verified", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

auth_profiles = Table(
    "auth_profiles",
    metadata,
    Column(
        "user_id",
        String(ID_LENGTH),
        ForeignKey("auth_users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("technical_background", Text, nullable=False, default=""),
    Column("hardware_access", Text, nullable=False, default=""),
    Column("learning_goals", Text, nullable=False, default=""),
    Column("preferred_language", Text, nullable=False, default=""),
    Column("updated_at", UtcDateTime, nullable=True),
)

# Signed-out tokens (their jti), kept until they would have expired anyway.
auth_revoked_tokens = Table(
    "auth_revoked_tokens",
    metadata,
    Column("token_id", String(ID_LENGTH), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "expires_at"),
)

content_cache = Table(
    "content_cache",
    metadata,
    # sha256 hex of the transform's identity (see rag_core.transforms.cache_key).
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The question log (rag_core.insights): answers as logged, and readers' votes on them.
logged_answers = Table(
    "logged_answers",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("asked_at", UtcDateTime, nullable=False, index=True),
    Column("question", Text, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("uncertain", Boolean, nullable=False),
    Column("pages", Text, nullable=False, default="[]"),  # JSON list of routes
    Column("missing_terms", Text, nullable=False, default="[]"),  # JSON list of terms
    Column("user_id", String(255), nullable=True),  # only with LOG_IDENTITIES
)

answer_votes = Table(
    "answer_votes",
    metadata,
    Column(
        "answer_id",
        String(ID_LENGTH),
        ForeignKey("logged_answers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("reader", String(64), primary_key=True),  # a keyed hash, never an id or address
    Column("rating", String(8), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("voted_at", UtcDateTime, nullable=False),
)
