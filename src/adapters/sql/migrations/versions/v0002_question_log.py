"""The question log: logged answers and readers' votes on them (rag_core.insights).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "logged_answers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("asked_at", _timestamp(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        sa.Column("pages", sa.Text(), nullable=False),
        sa.Column("missing_terms", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_logged_answers"),
    )
    op.create_index("ix_logged_answers_asked_at", "logged_answers", ["asked_at"])
    op.create_table(
        "answer_votes",
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("voted_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["logged_answers.id"],
            name="fk_answer_votes_answer_id_logged_answers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("answer_id", "reader", name="pk_answer_votes"),
    )


def downgrade() -> None:
    op.drop_table("answer_votes")
    op.drop_index("ix_logged_answers_asked_at", table_name="logged_answers")
    op.drop_table("logged_answers")
