"""Message texts: a municipality's own wording of a message template.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

`message_text` holds, per municipality and template file (`email/<name>.subject`, `.txt`,
`.html`), the body that replaces the file, who saved it and when; `municipality.texts_version`
is raised at each change, so the worker reads the texts only when they changed. Written to match
models/texts.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_message_text_municipality_id_municipality"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["person.id"], name=op.f("fk_message_text_updated_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_text")),
        sa.UniqueConstraint(
            "municipality_id", "template", name=op.f("uq_message_text_municipality_id")
        ),
    )
    op.create_index(
        op.f("ix_message_text_municipality_id"),
        "message_text",
        ["municipality_id"],
        unique=False,
    )
    op.add_column(
        "municipality",
        sa.Column("texts_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("municipality") as batch:
        batch.drop_column("texts_version")
    op.drop_index(op.f("ix_message_text_municipality_id"), table_name="message_text")
    op.drop_table("message_text")
