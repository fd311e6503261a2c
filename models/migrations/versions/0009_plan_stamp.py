"""The plan stamp: what a municipality's last full re-plan read, and until when it holds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

`plan_stamp` holds, per municipality, a digest of the planning input of its last full re-plan,
the moment it planned, until when the same input gives the same rows, how many rows it planned
and how many of its scope's rows were still to be sent. The nightly re-plan stands on it while
all of them hold (scheduler/planstamp.py). Written to match models/routines.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_stamp",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_plan_stamp_municipality_id_municipality"),
        ),
        sa.PrimaryKeyConstraint("municipality_id", name=op.f("pk_plan_stamp")),
    )


def downgrade() -> None:
    op.drop_table("plan_stamp")
