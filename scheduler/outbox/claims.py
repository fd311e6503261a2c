"""Claiming what is due, and putting back what was claimed but never finished.

Every claim is a conditional update: `UPDATE ... WHERE status = 'pending'` wins for exactly one
claimer. On PostgreSQL the candidate rows are first locked with FOR UPDATE SKIP LOCKED, so
several ticks running side by side take disjoint rows instead of waiting on each other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, func, select, update
from sqlalchemy.orm import Session

import models
from models import Status


def claim_due(
    session: Session, now: dt.datetime, limit: int, since: dt.datetime | None = None
) -> list[int]:
    """Mark up to `limit` due rows as queued; return their ids (this claimer's, no one else's)."""
    candidates = (
        select(models.Notification.id)
        .where(*_due(now, since))
        .order_by(models.Notification.due_at, models.Notification.id)
        .limit(limit)
    )
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


def _due(
    now: dt.datetime | BindParameter[Any], since: dt.datetime | BindParameter[Any] | None
) -> list[ColumnElement[bool]]:
    """What makes a row due at `now` (and not before `since`): pending, and its moment come."""
    due = [models.Notification.status == Status.PENDING, models.Notification.due_at <= now]
    if since is not None:
        due.append(models.Notification.due_at >= since)
    return due


def _first_due(with_since: bool) -> Select[int]:
    due_at = models.Notification.due_at
    now = bindparam("now", type_=due_at.type)
    since = bindparam("since", type_=due_at.type) if with_since else None
    return select(models.Notification.id).where(*_due(now, since)).order_by(due_at).limit(1)


# Built once: a statement built per call costs SQLAlchemy its cache key each time, 0.11 ms of
# an idle tick's 0.27 (bench/tickscale.py).
_FIRST_DUE = {False: _first_due(False), True: _first_due(True)}


def anything_due(
    now: dt.datetime, since: dt.datetime | None = None
) -> tuple[Select[int], dict[str, dt.datetime]]:
    """The statement, and its parameters, asking whether `claim_due(now, since)` would find a
    row (one id, or none): the idle tick's one question, answered from
    ix_notification_status_due_at without a transaction. Ordered by `due_at` like the claim, so
    that the plan walks the index even when it is a generic one (psycopg prepares a statement
    after its fifth run): an `EXISTS` without the order got a sequential scan then, 128 ms at
    1,000,000 future rows (docs/performance.md)."""
    if since is None:
        return _FIRST_DUE[False], {"now": now}
    return _FIRST_DUE[True], {"now": now, "since": since}


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
