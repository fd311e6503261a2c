"""The worker's writes: claim a queued row for sending, then record how the send ended.

The claim is a conditional update (`queued → sending`): a redelivered task or a second worker
finds nothing to claim. The outcomes are set on the row the worker holds in its transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Executable, Table, bindparam, insert, literal, select, update
from sqlalchemy.orm import Session

import models
from models import Status
from scheduler.outbox.invites import record_sent


def claim_for_sending(
    session: Session, notification_id: int, as_of: dt.datetime
) -> models.Notification | None:
    """`queued → sending`, counting the attempt; the row when this worker got it, else None."""
    rows = claim_many_for_sending(session, [notification_id], as_of)
    return rows[0] if rows else None


def claim_many_for_sending(
    session: Session, notification_ids: Sequence[int], as_of: dt.datetime
) -> list[models.Notification]:
    """`queued → sending` for each of `notification_ids` that is still queued, counting the
    attempt: the rows this worker got, in the order asked. A row already taken (a redelivered
    task, a second worker), done or cancelled is left out.

    One statement for the whole batch: the conditional update returns the rows it changed."""
    if not notification_ids:
        return []
    claimed = session.scalars(
        update(models.Notification)
        .where(
            models.Notification.id.in_(notification_ids),
            models.Notification.status == Status.QUEUED,
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
    ).all()
    by_id = {row.id: row for row in claimed}
    return [by_id[i] for i in dict.fromkeys(notification_ids) if i in by_id]


def _sent(as_of: dt.datetime, reply: str | None) -> dict[str, object]:
    """A row's columns once its message was sent (the server's reply kept, the lease ended)."""
    return {
        "status": Status.SENT.value,
        "last_error": None,
        "smtp_reply": reply,
        "claimed_at": None,
        "updated_at": as_of,
        "sent_at": as_of,
    }


def mark_sent_by_id(
    session: Session, notification_id: int, as_of: dt.datetime, reply: str | None
) -> models.Notification:
    """What `mark_sent` does, for a row not loaded yet: one UPDATE that returns the row
    (whatever its status: a send that happened is recorded even if the row was swept back
    meanwhile), then the record of the invitation it carried."""
    row = session.scalars(
        update(models.Notification)
        .where(models.Notification.id == notification_id)
        .values(_sent(as_of, reply))
        .returning(models.Notification),
        execution_options={"synchronize_session": False},
    ).one()
    record_sent(row, as_of)  # who was sent which invitation (a row without one: nothing)
    return row


def mark_sent_plain(
    session: Session, notification_id: int, as_of: dt.datetime, reply: str | None
) -> None:
    """What `mark_sent_by_id` does for a row that carried no invitation (so there is nothing
    to record of it): one UPDATE, nothing returned, on the table (no ORM bookkeeping)."""
    table = cast(Table, models.Notification.__table__)
    session.connection().execute(
        update(table).where(table.c.id == notification_id).values(_sent(as_of, reply))
    )


def record_plain_send(
    notification_id: int,
    attempt: int,
    as_of: dt.datetime,
    reply: str | None,
    duration_ms: int,
    worker: str,
) -> tuple[Executable, dict[str, object]]:
    """`mark_sent_plain` and the attempt's log line as one statement (PostgreSQL: the UPDATE
    in a WITH, the INSERT reading what it returned), and its parameters. Run in autocommit it
    is one round trip and one commit: the record after a send, with nothing else in the window.

    The statement is built once per process, with bound parameters: building it anew for each
    send (with the values as literals) cost a reminder more CPU than running it
    (docs/performance.md, phase 6)."""
    sent = {f"sent_{key}": value for key, value in _sent(as_of, reply).items()}
    line = {
        "line_number": attempt,
        "line_at": as_of,
        "line_duration_ms": duration_ms,
        "line_reply": reply,
        "line_worker": worker,
    }
    return _record_plain_statement(), {"notification_id": notification_id, **sent, **line}


@functools.cache
def _record_plain_statement() -> Executable:
    n = cast(Table, models.Notification.__table__)
    a = cast(Table, models.DeliveryAttempt.__table__)
    columns = _sent(dt.datetime.now(dt.UTC), None)  # only its keys: the columns a send sets
    sent = (
        update(n)
        .where(n.c.id == bindparam("notification_id", type_=n.c.id.type))
        .values({key: bindparam(f"sent_{key}", type_=n.c[key].type) for key in columns})
        .returning(n.c.id)
        .cte("sent")
    )
    line = select(
        sent.c.id,
        bindparam("line_number", type_=a.c.number.type),
        bindparam("line_at", type_=a.c.at.type),
        bindparam("line_duration_ms", type_=a.c.duration_ms.type),
        literal("sent", a.c.outcome.type),
        bindparam("line_reply", type_=a.c.reply.type),
        bindparam("line_worker", type_=a.c.worker.type),
    )
    names = ["notification_id", "number", "at", "duration_ms", "outcome", "reply", "worker"]
    return insert(a).from_select(names, line)


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
