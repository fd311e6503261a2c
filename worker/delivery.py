"""Deliver outbox rows: claim them, check each recipient, render, send, record each attempt.

Celery tasks are thin wrappers around `deliver_batch` (and `deliver_one`, a batch of one,
which tests call directly). Every step that changes a row is a conditional update, so a
redelivered task or a second worker finds nothing to do instead of sending a second copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import (
    DeliveryError,
    PermanentDeliveryError,
    SamverkanError,
    TransientDeliveryError,
)
from models import Status
from models.db import HeldConnection
from scheduler import outbox
from scheduler.cases.guard import send_time_refusal
from scheduler.directory import RoleDirectory, load_directory
from scheduler.handover import hand_over
from scheduler.municipality import MunicipalitySettings
from worker.mailers import Mailer
from worker.outgoing import build_message
from worker.render import Renderer

log = logging.getLogger("samverkan.delivery")
HOSTNAME = socket.gethostname()  # the attempt log's worker column


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient failure, back to pending with a later due time
    FAILED = "failed"
    SKIPPED = "skipped"  # not ours: already taken, done or cancelled
    CANCELLED = "cancelled"  # the recipient no longer holds the role


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 60.0
    max_delay_seconds: float = 6 * 3600.0
    horizon: dt.timedelta = dt.timedelta(hours=72)

    def delay(self, attempt: int, seed: int) -> dt.timedelta:
        """Exponential backoff with jitter: base·2^(n-1), capped, then a random 50-100 % of it."""
        raw = min(self.base_seconds * 2 ** (attempt - 1), self.max_delay_seconds)
        jitter = random.Random(seed * 1000 + attempt).uniform(0.5, 1.0)
        return dt.timedelta(seconds=raw * jitter)


@dataclass
class Delivery:
    """What a worker process needs to deliver: sessions, a mail transport, templates, a policy."""

    sessions: sessionmaker[Session]
    mailer: Mailer
    renderer: Renderer
    retry: RetryPolicy = RetryPolicy()
    # The mailbox the service reads answers from: when set, invitations name it as the
    # ORGANIZER (with the convener's name), so calendar replies reach it (docs/invites.md).
    reply_mailbox: str | None = None


def deliver_one(delivery: Delivery, notification_id: int, as_of: dt.datetime) -> DeliveryOutcome:
    """Send notification `notification_id` as of the logical moment `as_of`: a batch of one."""
    return deliver_batch(delivery, [notification_id], as_of)[notification_id]


def deliver_batch(
    delivery: Delivery, notification_ids: Sequence[int], as_of: dt.datetime
) -> dict[int, DeliveryOutcome]:
    """Send the rows `notification_ids` (one task's batch) as of the logical moment `as_of`.

    One transaction claims the batch, checks each row's recipient and builds each message;
    then each message is sent and its outcome recorded, in its own transaction, before the
    next is sent. So the window a crash can duplicate (the server has a message, the database
    does not know yet) stays one message per worker process, however large the batch.

    Each database step is retried on a fresh connection when the connection drops
    (`_retry_on_disconnect`); a send itself is never repeated here.
    """
    ids = list(dict.fromkeys(notification_ids))
    prepared = _retry_on_disconnect(lambda _again: _prepare(delivery, ids, as_of))
    outcomes: dict[int, DeliveryOutcome] = {}
    records = _held(delivery)
    try:
        for notification_id in ids:
            item = prepared.get(notification_id, DeliveryOutcome.SKIPPED)
            if isinstance(item, DeliveryOutcome):
                outcomes[notification_id] = item
            else:
                outcomes[notification_id] = _send(delivery, notification_id, as_of, item, records)
    finally:
        if records is not None:
            records.close()
    return outcomes


def _held(delivery: Delivery) -> HeldConnection | None:
    """PostgreSQL: the connection a batch holds for its records of sends that carried no
    invitation, each one statement (`outbox.record_plain_send`): one round trip and one commit
    after each send, instead of a checkout, BEGIN, UPDATE, INSERT and COMMIT. On SQLite (a
    file on the same machine) the record stays one short transaction."""
    engine = delivery.sessions.kw.get("bind")
    held = HeldConnection(engine) if isinstance(engine, Engine) else None
    return held if held is not None and held.usable else None


def _send(
    delivery: Delivery,
    notification_id: int,
    as_of: dt.datetime,
    prepared: _Ready | PermanentDeliveryError,
    records: HeldConnection | None = None,
) -> DeliveryOutcome:
    started = time.monotonic()
    if isinstance(prepared, PermanentDeliveryError):  # the message could not be built
        failure = partial(_record_failure, delivery, notification_id, as_of, prepared, started)
        return _retry_on_disconnect(failure)
    try:
        result = delivery.mailer.send(prepared.message)
    except DeliveryError as exc:
        failure = partial(_record_failure, delivery, notification_id, as_of, exc, started)
        return _retry_on_disconnect(failure)
    # The one open window: the server has the message and the database does not know yet.
    # Nothing else happens in it; a crash here makes the sweeper send the same copy again
    # (same Message-ID) once the lease runs out. See docs/reliability.md.
    record = partial(
        _record_sent,
        delivery,
        notification_id,
        as_of,
        result,
        started,
        attempt=prepared.attempt if prepared.plain else None,
        records=records,
    )
    _retry_on_disconnect(record)
    log.info("sent", extra={"action": "deliver.sent", "notification": notification_id})
    return DeliveryOutcome.SENT


@dataclass(frozen=True)
class _Ready:
    """A claimed row's message, built, with what its record after the send needs."""

    message: EmailMessage
    attempt: int  # the row's attempts after this claim: the number of this attempt
    plain: bool  # no invitation: the record is one UPDATE and one INSERT, nothing read


_Prepared = _Ready | DeliveryOutcome | PermanentDeliveryError


def _prepare(
    delivery: Delivery, notification_ids: list[int], as_of: dt.datetime
) -> dict[int, _Prepared]:
    """Claim the rows and build their messages (one transaction). For each row claimed: its
    message, or the outcome if there is nothing to send, or the reason it could not be built
    (recorded by the caller as a permanent failure). Rows not claimed are left out."""
    with delivery.sessions() as session, session.begin():
        rows = outbox.claim_many_for_sending(session, notification_ids, as_of)
        # Held for the whole transaction: the role check and the message read them through
        # the session's identity map (which keeps only what is referenced) instead of again.
        municipalities = {
            m.id: m
            for m in session.scalars(
                select(models.Municipality).where(
                    models.Municipality.id.in_({row.municipality_id for row in rows})
                )
            )
        }
        recipients = _recipients(session, rows, municipalities)
        memo: dict[object, object] = {}  # what build_message reads once per batch
        prepared: dict[int, _Prepared] = {
            row.id: _prepare_row(session, delivery, row, as_of, recipients, memo) for row in rows
        }
        del municipalities
    for notification_id in notification_ids:
        if notification_id not in prepared:
            log.info("skip", extra={"action": "deliver.skip", "notification": notification_id})
    return prepared


def _recipients(
    session: Session,
    rows: list[models.Notification],
    municipalities: dict[int, models.Municipality],
) -> dict[int, RoleDirectory]:
    """The role assignments of the batch's recipients, one query per municipality."""
    wanted: dict[int, set[int]] = {}
    for row in rows:
        if row.roles and row.person_id is not None:
            wanted.setdefault(row.municipality_id, set()).add(row.person_id)
    return {
        municipality_id: load_directory(
            session,
            municipality_id,
            dict(MunicipalitySettings.of(municipalities[municipality_id]).role_names),
            person_ids=people,
        )
        for municipality_id, people in wanted.items()
    }


def _prepare_row(
    session: Session,
    delivery: Delivery,
    row: models.Notification,
    as_of: dt.datetime,
    recipients: dict[int, RoleDirectory],
    memo: dict[object, object],
) -> _Prepared:
    # An invitation older than what the recipient has, or a CANCEL of one they do not
    # hold, is not sent (the record of who was sent what: scheduler/outbox/invites.py).
    refusal = send_time_refusal(session, row, as_of) or outbox.refusal(session, row)
    if refusal is not None:
        _cancel_at_send(session, row, as_of, refusal)
        return DeliveryOutcome.CANCELLED
    # Rows addressed to a person or an external address directly (case work) carry no
    # role references: there is no role to check again.
    if row.roles and not _recipient_still_holds_role(
        session, row, as_of, recipients.get(row.municipality_id)
    ):
        return DeliveryOutcome.CANCELLED
    try:
        message = build_message(
            session, delivery.renderer, row, as_of, delivery.reply_mailbox, memo=memo
        )
        return _Ready(message, row.attempts, plain=not (row.context or {}).get("meeting"))
    except DBAPIError:
        raise  # the database, not the message: _retry_on_disconnect runs it again
    except Exception as exc:  # whatever breaks one message fails that row only
        # A message that cannot be built will not build on a retry either. Any error
        # (template, invite, attachment) fails this row with its reason; it never ends
        # the task, which would leave the row queued and the rows after it waiting.
        log.warning(
            "message could not be built",
            extra={"action": "deliver.build_failed", "notification": row.id},
        )
        return PermanentDeliveryError(_build_failure(exc))


def _build_failure(exc: Exception) -> str:
    if isinstance(exc, SamverkanError):
        return str(exc)
    return f"the message could not be built ({type(exc).__name__}): {exc}"


def _record_sent(
    delivery: Delivery,
    notification_id: int,
    as_of: dt.datetime,
    result: Any,
    started: float,
    again: bool = False,
    *,
    attempt: int | None = None,
    records: HeldConnection | None = None,
) -> None:
    """Record the send. With `attempt` (a row without an invitation, its attempt number known
    from the claim) nothing is read: one statement on PostgreSQL (`records`), an UPDATE and an
    INSERT on SQLite. Otherwise the row is returned by its UPDATE for its invitation's record.
    `again` (after a dropped connection) first looks whether the record was written."""
    if attempt is not None and not again and records is not None:
        statement, parameters = outbox.record_plain_send(
            notification_id, attempt, as_of, result.reply, _ms(started), HOSTNAME
        )
        records.execute_plain(statement, parameters)
        return
    with delivery.sessions() as session, session.begin():
        if attempt is not None and not again:
            outbox.mark_sent_plain(session, notification_id, as_of, result.reply)
            session.connection().execute(
                insert(cast(Table, models.DeliveryAttempt.__table__)).values(
                    notification_id=notification_id,
                    number=attempt,
                    at=as_of,
                    duration_ms=_ms(started),
                    outcome=DeliveryOutcome.SENT.value,
                    reply=result.reply,
                    worker=HOSTNAME,
                )
            )
            return
        if again:
            row = session.get_one(models.Notification, notification_id)
            if _already_recorded(session, row):
                return  # a commit whose reply was lost with the connection: it did happen
            outbox.mark_sent(row, as_of, result.reply)
        else:  # the usual case: one UPDATE returning the row, one INSERT
            row = outbox.mark_sent_by_id(session, notification_id, as_of, result.reply)
        _attempt(
            session,
            row,
            as_of,
            DeliveryOutcome.SENT.value,
            reply=result.reply,
            duration_ms=_ms(started),
        )


def _already_recorded(session: Session, row: models.Notification) -> bool:
    """True when this claim's attempt (number = attempts) is in the log already."""
    found = session.scalar(
        select(func.count()).where(
            models.DeliveryAttempt.notification_id == row.id,
            models.DeliveryAttempt.number == row.attempts,
        )
    )
    return bool(found)


_T = TypeVar("_T")
DB_RETRIES = 5


def _retry_on_disconnect(work: Callable[[bool], _T]) -> _T:
    """Run `work` (one whole transaction) again when the database connection was lost.

    `work(again)` is told whether this is a second try, so it checks for its own earlier
    write only then (one query fewer in the window after a send).

    SQLAlchemy invalidates a dropped connection and the pool (pre-ping) hands out a fresh one,
    so the transaction is simply run again. Each step is safe to repeat: claims are
    conditional and the records after a send check whether they were written already.
    """
    for attempt in range(1, DB_RETRIES + 1):
        try:
            return work(attempt > 1)
        except DBAPIError as exc:
            lost = exc.connection_invalidated or isinstance(exc, OperationalError)
            if not lost or attempt == DB_RETRIES:
                raise
            log.warning(
                "database connection lost; trying again",
                extra={"action": "deliver.db_retry", "attempt": attempt},
            )
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _cancel_at_send(
    session: Session, row: models.Notification, as_of: dt.datetime, reason: str
) -> None:
    """A case or report message that must not go out (confidentiality, or no longer applies)."""
    outbox.cancel(row, as_of, reason)
    _attempt(session, row, as_of, "skipped", error=row.cancel_reason)
    log.info("cancelled at send time", extra={"action": "deliver.cancel", "notification": row.id})


def _recipient_still_holds_role(
    session: Session,
    row: models.Notification,
    as_of: dt.datetime,
    recipients: RoleDirectory | None = None,
) -> bool:
    """Check the role again at send time; if it changed hands, the new holder gets the message
    (planned by scheduler/handover.py) and this row's attempt is recorded as skipped."""
    if hand_over(session, row, as_of, recipients):
        return True
    _attempt(session, row, as_of, "skipped", error=row.cancel_reason)
    log.info("redirected", extra={"action": "deliver.redirect", "notification": row.id})
    return False


def _record_failure(
    delivery: Delivery,
    notification_id: int,
    as_of: dt.datetime,
    exc: DeliveryError,
    started: float,
    again: bool = False,
) -> DeliveryOutcome:
    with delivery.sessions() as session, session.begin():
        row = session.get_one(models.Notification, notification_id)
        if again and _already_recorded(session, row):  # written before the connection dropped
            return DeliveryOutcome.RETRY if row.status == Status.PENDING else DeliveryOutcome.FAILED
        outcome = DeliveryOutcome.FAILED
        retry_at = None
        if isinstance(exc, TransientDeliveryError):
            first = session.scalar(
                select(func.min(models.DeliveryAttempt.at)).where(
                    models.DeliveryAttempt.notification_id == row.id
                )
            )
            first = first or as_of
            next_try = as_of + delivery.retry.delay(row.attempts, row.id)
            if next_try - first <= delivery.retry.horizon:
                outcome, retry_at = DeliveryOutcome.RETRY, next_try
        kind = "transient" if isinstance(exc, TransientDeliveryError) else "permanent"
        _finish(
            session,
            row,
            as_of,
            outcome,
            error=str(exc),
            reply=exc.reply,
            next_try=retry_at,
            code=exc.smtp_code,
            duration_ms=_ms(started),
            attempt_outcome=kind,
        )
    log.warning(
        "delivery failed",
        extra={
            "action": f"deliver.{outcome.value}",
            "notification": notification_id,
            "code": exc.smtp_code,
        },
    )
    return outcome


def _finish(
    session: Session,
    row: models.Notification,
    as_of: dt.datetime,
    outcome: DeliveryOutcome,
    *,
    reply: str | None = None,
    error: str | None = None,
    code: int | None = None,
    duration_ms: int = 0,
    attempt_outcome: str | None = None,
    next_try: dt.datetime | None = None,
) -> None:
    if outcome is DeliveryOutcome.SENT:
        outbox.mark_sent(row, as_of, reply)
    elif outcome is DeliveryOutcome.RETRY and next_try is not None:
        outbox.mark_retry(row, as_of, next_try, error or "transient failure", reply)
    else:
        outbox.mark_failed(row, as_of, error or "failed", reply)
    _attempt(
        session,
        row,
        as_of,
        attempt_outcome or outcome.value,
        reply=reply,
        error=error,
        code=code,
        duration_ms=duration_ms,
    )


def _attempt(
    session: Session,
    row: models.Notification,
    as_of: dt.datetime,
    outcome: str,
    *,
    reply: str | None = None,
    error: str | None = None,
    code: int | None = None,
    duration_ms: int = 0,
) -> None:
    session.add(
        models.DeliveryAttempt(
            notification_id=row.id,
            number=row.attempts,
            at=as_of,
            duration_ms=duration_ms,
            outcome=outcome,
            smtp_code=code,
            reply=reply,
            error=error,
            worker=HOSTNAME,
        )
    )


__all__ = [
    "Delivery",
    "DeliveryOutcome",
    "PermanentDeliveryError",
    "RetryPolicy",
    "deliver_batch",
    "deliver_one",
]
