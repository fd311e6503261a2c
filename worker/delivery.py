"""Deliver one outbox row: claim it, check its recipient, render, send, record the attempt.

Celery tasks are thin wrappers around `deliver_one`, which tests call directly. Every step
that changes a row is a conditional update, so a redelivered task or a second worker finds
nothing to do instead of sending a second copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import func, select
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
from scheduler import outbox
from scheduler.cases.guard import send_time_refusal
from scheduler.handover import hand_over
from worker.mailers import Mailer
from worker.outgoing import build_message
from worker.render import Renderer

log = logging.getLogger("samverkan.delivery")


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
    """Send notification `notification_id` as of the logical moment `as_of`.

    Each database step is retried on a fresh connection when the connection drops
    (`_retry_on_disconnect`); the send itself is never repeated here.
    """
    prepared = _retry_on_disconnect(lambda _again: _prepare(delivery, notification_id, as_of))
    if isinstance(prepared, DeliveryOutcome):
        return prepared
    started = time.monotonic()
    if isinstance(prepared, PermanentDeliveryError):  # the message could not be built
        failure = partial(_record_failure, delivery, notification_id, as_of, prepared, started)
        return _retry_on_disconnect(failure)
    try:
        result = delivery.mailer.send(prepared)
    except DeliveryError as exc:
        failure = partial(_record_failure, delivery, notification_id, as_of, exc, started)
        return _retry_on_disconnect(failure)
    # The one open window: the server has the message and the database does not know yet.
    # Nothing else happens in it; a crash here makes the sweeper send the same copy again
    # (same Message-ID) once the lease runs out. See docs/reliability.md.
    _retry_on_disconnect(partial(_record_sent, delivery, notification_id, as_of, result, started))
    log.info("sent", extra={"action": "deliver.sent", "notification": notification_id})
    return DeliveryOutcome.SENT


def _prepare(
    delivery: Delivery, notification_id: int, as_of: dt.datetime
) -> EmailMessage | DeliveryOutcome | PermanentDeliveryError:
    """Claim the row and build its message (one transaction); or the outcome if there is none,
    or the reason it could not be built (recorded by the caller as a permanent failure)."""
    with delivery.sessions() as session, session.begin():
        row = outbox.claim_for_sending(session, notification_id, as_of)
        if row is None:
            log.info("skip", extra={"action": "deliver.skip", "notification": notification_id})
            return DeliveryOutcome.SKIPPED
        # Held for the whole transaction: the role check and the message read it through the
        # session's identity map (which keeps only what is referenced) instead of again.
        municipality = session.get_one(models.Municipality, row.municipality_id)
        # An invitation older than what the recipient has, or a CANCEL of one they do not
        # hold, is not sent (the record of who was sent what: scheduler/outbox/invites.py).
        refusal = send_time_refusal(session, row, as_of) or outbox.refusal(session, row)
        if refusal is not None:
            _cancel_at_send(session, row, as_of, refusal)
            return DeliveryOutcome.CANCELLED
        # Rows addressed to a person or an external address directly (case work) carry no
        # role references: there is no role to check again.
        if row.roles and not _recipient_still_holds_role(session, row, as_of):
            return DeliveryOutcome.CANCELLED
        try:
            message: EmailMessage = build_message(
                session, delivery.renderer, row, as_of, delivery.reply_mailbox
            )
        except DBAPIError:
            raise  # the database, not the message: _retry_on_disconnect runs it again
        except Exception as exc:  # whatever breaks one message fails that row only
            # A message that cannot be built will not build on a retry either. Any error
            # (template, invite, attachment) fails this row with its reason; it never ends
            # the task, which would leave the row queued and the rows after it waiting.
            log.warning(
                "message could not be built",
                extra={"action": "deliver.build_failed", "notification": notification_id},
            )
            return PermanentDeliveryError(_build_failure(exc))
        del municipality
    return message


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
) -> None:
    with delivery.sessions() as session, session.begin():
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
    session: Session, row: models.Notification, as_of: dt.datetime
) -> bool:
    """Check the role again at send time; if it changed hands, the new holder gets the message
    (planned by scheduler/handover.py) and this row's attempt is recorded as skipped."""
    if hand_over(session, row, as_of):
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
            worker=socket.gethostname(),
        )
    )


__all__ = ["Delivery", "DeliveryOutcome", "PermanentDeliveryError", "RetryPolicy", "deliver_one"]
