"""An index for the re-plan: a municipality's rows still to be sent, by due time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

The re-plan reads, for one municipality, its pending rows due from now
(scheduler/planner.py `_routine_scope`). Without this index PostgreSQL found them through
`ix_notification_status_due_at`, reading every municipality's pending rows: a nightly re-plan of
290 municipalities read the country's rows 290 times (docs/performance.md). Written to match
models/outbox.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notification_municipality_status_due_at",
        "notification",
        ["municipality_id", "status", "due_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_notification_municipality_status_due_at", table_name="notification")
