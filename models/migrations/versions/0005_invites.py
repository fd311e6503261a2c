"""Invite lifecycle: the record of who was sent which invitation, and called-off bookings.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01

`invite_record` holds, per meeting UID and recipient address, the last SEQUENCE and METHOD
sent; `booking.cancelled_at` marks a meeting called off.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invite_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("routine_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=400), nullable=False),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_invite_record_municipality_id_municipality"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_invite_record_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_invite_record_notification_id_notification"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_record")),
        sa.UniqueConstraint("uid", "recipient_email", name=op.f("uq_invite_record_uid")),
    )
    op.create_index(
        "ix_invite_record_routine_occurrence",
        "invite_record",
        ["routine_key", "occurrence"],
        unique=False,
    )
    with op.batch_alter_table("booking") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("booking") as batch:
        batch.drop_column("cancelled_at")
    op.drop_index("ix_invite_record_routine_occurrence", table_name="invite_record")
    op.drop_table("invite_record")
