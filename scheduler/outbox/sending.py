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


def claim_for_sending(
    session: Session, notification_id: int, as_of: dt.datetime
) -> models.Notification | None:
    """`queued → sending`, counting the attempt; the row when this worker got it, else None.

    One statement: the conditional update returns the row it changed (no second SELECT)."""
    return session.scalars(
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
        .returning(models.Notification),
        execution_options={"synchronize_session": False},
    ).one_or_none()


def mark_sent_by_id(
    session: Session, notification_id: int, as_of: dt.datetime, reply: str | None
) -> models.Notification:
    """What `mark_sent` does, for a row not loaded yet: one UPDATE that returns the row
    (whatever its status: a send that happened is recorded even if the row was swept back
    meanwhile), then the record of the invitation it carried."""
    row = session.scalars(
        update(models.Notification)
        .where(models.Notification.id == notification_id)
        .values(
            status=Status.SENT,
            last_error=None,
            smtp_reply=reply,
            claimed_at=None,
            updated_at=as_of,
            sent_at=as_of,
        )
        .returning(models.Notification),
        execution_options={"synchronize_session": False},
    ).one()
    record_sent(row, as_of)  # who was sent which invitation (a row without one: nothing)
    return row


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


def resend(session: Session, notification_id: int, now: dt.datetime) -> bool:
    """`failed → pending`, due now: a coordinator asks for one more try. True when the row was
    failed (a second click, or a row in any other state, changes nothing). Its attempts and
    their log stay; the last error is cleared so the row reads as planned, not retrying."""
    result = session.execute(
        update(models.Notification)
        .where(
            models.Notification.id == notification_id, models.Notification.status == Status.FAILED
        )
        .values(status=Status.PENDING, due_at=now, last_error=None, claimed_at=None, updated_at=now)
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]
