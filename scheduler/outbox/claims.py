"""Claiming what is due, and putting back what was claimed but never finished.

Every claim is a conditional update: `UPDATE ... WHERE status = 'pending'` wins for exactly one
claimer. On PostgreSQL the candidate rows are first locked with FOR UPDATE SKIP LOCKED, so
several ticks running side by side take disjoint rows instead of waiting on each other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import models
from models import Status


def claim_due(
    session: Session, now: dt.datetime, limit: int, since: dt.datetime | None = None
) -> list[int]:
    """Mark up to `limit` due rows as queued; return their ids (this claimer's, no one else's)."""
    candidates = (
        select(models.Notification.id)
        .where(models.Notification.status == Status.PENDING, models.Notification.due_at <= now)
        .order_by(models.Notification.due_at, models.Notification.id)
        .limit(limit)
    )
    if since is not None:
        candidates = candidates.where(models.Notification.due_at >= since)
    still_pending = models.Notification.status == Status.PENDING
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    else:
        # Without statistics SQLite plans `id IN (…) AND status = …` on the status index and
        # scans every pending row (0.6 s for 100 due among 2.29 M scheduled: bench/RESULTS.md).
        # `status || ''` cannot use an index, so the rows are found by primary key.
        still_pending = (models.Notification.status + "") == Status.PENDING
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    claimed = session.scalars(
        update(models.Notification)
        .where(models.Notification.id.in_(ids), still_pending)
        .values(status=Status.QUEUED, claimed_at=now, updated_at=now)
        .returning(models.Notification.id)
    )
    return sorted(claimed)


# The key of the transaction-level advisory lock the backlog ticks take on PostgreSQL.
TICK_LOCK = 0x73616D76  # "samv"


def serialize_ticks(session: Session) -> None:
    """Wait for any other backlog tick's transaction to end (PostgreSQL; released at commit).

    On SQLite every write transaction begins with BEGIN IMMEDIATE, which serialises already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(TICK_LOCK)))


def sweep_expired(session: Session, now: dt.datetime, lease: dt.timedelta) -> int:
    """Put rows claimed longer ago than `lease` and not finished back to pending.

    A worker that died, a broker that lost its messages, a tick that crashed between claiming
    and publishing: in each case the row is still in the database, so nothing is lost.
    """
    result = session.execute(
        update(models.Notification)
        .where(
            models.Notification.status.in_([Status.QUEUED, Status.SENDING]),
            models.Notification.claimed_at < now - lease,
        )
        .values(status=Status.PENDING, claimed_at=None, updated_at=now)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def next_due(session: Session, after: dt.datetime | None = None) -> dt.datetime | None:
    """The earliest due moment of a pending row (strictly after `after`, when given)."""
    query = select(func.min(models.Notification.due_at)).where(
        models.Notification.status == Status.PENDING
    )
    if after is not None:
        query = query.where(models.Notification.due_at > after)
    value = session.scalar(query)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def open_count(session: Session, ids: list[int] | None = None) -> int:
    """How many rows are claimed but not finished (all, or among `ids`)."""
    query = select(func.count()).where(
        models.Notification.status.in_([Status.QUEUED, Status.SENDING])
    )
    if ids is not None:
        query = query.where(models.Notification.id.in_(ids))
    return session.scalar(query) or 0
