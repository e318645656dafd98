"""The baseline: the schema ``metadata.create_all`` made before migrations existed.

Every name is spelled out (constraints and indexes as the naming convention of
``adapters.sql.schema`` produced them), so this revision never changes when the
models or their naming convention do. Defaults were Python-side then (no server
defaults), and stay so.

A database that ``create_all`` made is stamped at this revision without running it
(see ``adapters.sql.migrate``). One made by a release before accounts existed holds
only the chat tables: each table here is created only when it is missing, so that
database gets the rest and keeps what it has.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TABLES = (
    "auth_revoked_tokens",
    "auth_users",
    "chat_sessions",
    "content_cache",
    "auth_profiles",
    "chat_messages",
)


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "auth_revoked_tokens" not in existing:
        op.create_table(
            "auth_revoked_tokens",
            sa.Column("token_id", sa.String(64), nullable=False),
            sa.Column("expires_at", _timestamp(), nullable=False),
            sa.PrimaryKeyConstraint("token_id", name="pk_auth_revoked_tokens"),
        )
        op.create_index("ix_auth_revoked_tokens_expires_at", "auth_revoked_tokens", ["expires_at"])
    if "auth_users" not in existing:
        op.create_table(
            "auth_users",
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("email", sa.String(254), nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("proficiency", sa.String(16), nullable=False),
            sa.Column("email_verified", sa.Boolean(), nullable=False),
            sa.Column("created_at", _timestamp(), nullable=False),
            sa.Column("updated_at", _timestamp(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_auth_users"),
            sa.UniqueConstraint("email", name="uq_auth_users_email"),
        )
    if "chat_sessions" not in existing:
        op.create_table(
            "chat_sessions",
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("user_id", sa.String(255), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("created_at", _timestamp(), nullable=False),
            sa.Column("updated_at", _timestamp(), nullable=False),
            sa.Column("is_active", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_chat_sessions"),
        )
        op.create_index(
            "ix_chat_sessions_user_id_updated_at", "chat_sessions", ["user_id", "updated_at"]
        )
    if "content_cache" not in existing:
        op.create_table(
            "content_cache",
            sa.Column("key", sa.String(64), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.Column("created_at", _timestamp(), nullable=False),
            sa.PrimaryKeyConstraint("key", name="pk_content_cache"),
        )
    if "auth_profiles" not in existing:
        op.create_table(
            "auth_profiles",
            sa.Column("user_id", sa.String(64), nullable=False),
            sa.Column("technical_background", sa.Text(), nullable=False),
            sa.Column("hardware_access", sa.Text(), nullable=False),
            sa.Column("learning_goals", sa.Text(), nullable=False),
            sa.Column("preferred_language", sa.Text(), nullable=False),
            sa.Column("updated_at", _timestamp(), nullable=True),
            sa.PrimaryKeyConstraint("user_id", name="pk_auth_profiles"),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["auth_users.id"],
                name="fk_auth_profiles_user_id_auth_users",
                ondelete="CASCADE",
            ),
        )
    if "chat_messages" not in existing:
        op.create_table(
            "chat_messages",
            # BIGSERIAL on PostgreSQL; SQLite only autoincrements an INTEGER key.
            sa.Column(
                "seq",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=False,
                autoincrement=True,
            ),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("session_id", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("selected_text", sa.Text(), nullable=False),
            sa.Column("sources", sa.Text(), nullable=False),
            sa.Column("created_at", _timestamp(), nullable=False),
            sa.PrimaryKeyConstraint("seq", name="pk_chat_messages"),
            sa.UniqueConstraint("id", name="uq_chat_messages_id"),
            sa.ForeignKeyConstraint(
                ["session_id"],
                ["chat_sessions.id"],
                name="fk_chat_messages_session_id_chat_sessions",
                ondelete="CASCADE",
            ),
        )
        op.create_index("ix_chat_messages_session_id_seq", "chat_messages", ["session_id", "seq"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
