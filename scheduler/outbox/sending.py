"""The worker's writes: claim a queued row for sending, then record how the send ended.

The claim is a conditional update (`queued → sending`): a redelivered task or a second worker
finds nothing to claim. The outcomes are set on the row the worker holds in its transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

import models
from models import Status
from scheduler.outbox.invites import record_sent


def claim_for_sending(session: Session, notification_id: int, as_of: dt.datetime) -> bool:
    """`queued → sending`, counting the attempt; True when this worker got the row."""
    result = session.execute(
        update(models.Notification)
        .where(
            models.Notification.id == notification_id, models.Notification.status == Status.QUEUED
        )
        .values(
            status=Status.SENDING,
            attempts=models.Notification.attempts + 1,
            # The lease starts again now: a row that waited in the broker's backlog must not
            # be swept back (and sent a second time) while this worker is sending it.
            claimed_at=max(as_of, dt.datetime.now(dt.UTC)),
            updated_at=as_of,
        )
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


def mark_sent(row: models.Notification, as_of: dt.datetime, reply: str | None) -> None:
    _done(row, as_of, Status.SENT, None, reply)
    row.sent_at = as_of
    record_sent(row, as_of)  # who was sent which invitation (a row without one: nothing)


def mark_retry(
    row: models.Notification,
    as_of: dt.datetime,
    next_try: dt.datetime,
    error: str,
    reply: str | None,
) -> None:
    """A transient failure: pending again, due at `next_try`; the error marks it a retry."""
    _done(row, as_of, Status.PENDING, error, reply)
    row.due_at = next_try


def mark_failed(
    row: models.Notification, as_of: dt.datetime, error: str, reply: str | None
) -> None:
    _done(row, as_of, Status.FAILED, error, reply)


def _done(
    row: models.Notification,
    as_of: dt.datetime,
    status: Status,
    error: str | None,
    reply: str | None,
) -> None:
    row.status = status
    row.last_error = error
    row.smtp_reply = reply
    row.claimed_at = None
    row.updated_at = as_of
