"""The web app: accounts, sign-in attempts, feed tokens, its audit and key; heartbeats.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01

Written to match models/accounts.py (the migration test compares `upgrade head` with the
models). `down_revision` is set at merge time to whatever precedes it then.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_web_account_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_account")),
        sa.UniqueConstraint("person_id", name=op.f("uq_web_account_person_id")),
        sa.UniqueConstraint("username", name=op.f("uq_web_account_username")),
    )
    op.create_table(
        "web_sign_in_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sign_in_attempt")),
    )
    op.create_index("ix_web_sign_in_attempt_username_at", "web_sign_in_attempt", ["username", "at"])
    op.create_index("ix_web_sign_in_attempt_address_at", "web_sign_in_attempt", ["address", "at"])
    op.create_table(
        "web_feed_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_web_feed_token_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_feed_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_web_feed_token_digest")),
    )
    op.create_index(
        op.f("ix_web_feed_token_person_id"), "web_feed_token", ["person_id"], unique=False
    )
    op.create_table(
        "web_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["person.id"], name=op.f("fk_web_audit_actor_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_web_audit_municipality_id_municipality"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_audit")),
    )
    op.create_index(
        op.f("ix_web_audit_municipality_id"), "web_audit", ["municipality_id"], unique=False
    )
    op.create_table(
        "web_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_secret")),
        sa.UniqueConstraint("name", name=op.f("uq_web_secret_name")),
    )
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat")),
        sa.UniqueConstraint("name", name=op.f("uq_heartbeat_name")),
    )


def downgrade() -> None:
    op.drop_table("heartbeat")
    op.drop_table("web_secret")
    op.drop_index(op.f("ix_web_audit_municipality_id"), table_name="web_audit")
    op.drop_table("web_audit")
    op.drop_index(op.f("ix_web_feed_token_person_id"), table_name="web_feed_token")
    op.drop_table("web_feed_token")
    op.drop_index("ix_web_sign_in_attempt_address_at", table_name="web_sign_in_attempt")
    op.drop_index("ix_web_sign_in_attempt_username_at", table_name="web_sign_in_attempt")
    op.drop_table("web_sign_in_attempt")
    op.drop_table("web_account")
