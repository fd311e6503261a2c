"""Answers to meeting invitations read from the reply mailbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=400), nullable=False),
        sa.Column("routine_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.String(length=64), nullable=False),
        sa.Column("attendee_email", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("partstat", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("dtstamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_answer_municipality_id_municipality"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_answer_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer")),
        sa.UniqueConstraint("uid", "attendee_email", name=op.f("uq_answer_uid")),
    )
    op.create_index(
        "ix_answer_routine_occurrence",
        "answer",
        ["municipality_id", "routine_key", "occurrence"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_answer_routine_occurrence", table_name="answer")
    op.drop_table("answer")
