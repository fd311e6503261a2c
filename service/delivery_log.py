"""The delivery log for coordinators: every message per recipient and what became of it, and
the one action on it, resending a failed message (through the outbox's writer, audited).

Every query starts from the viewer's municipality; the route lets coordinators only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler import outbox
from scheduler.calendar import STOCKHOLM
from service.viewer import Viewer

# --- the delivery log ----------------------------------------------------------------------------

LOG_FILTERS = {
    "alla": (),
    "planerade": ("pending", "queued", "sending"),
    "skickade": ("sent",),
    "misslyckade": ("failed",),
    "stoppade": ("cancelled",),
}
LOG_PAGE = 100
STATUS_TEXT = {
    "planned": "Planerad",
    "retrying": "Försöker igen",
    "sending": "Skickas",
    "sent": "Skickad",
    "failed": "Misslyckad",
    "cancelled": "Stoppad",
}
OUTCOME_TEXT = {
    "sent": "skickad",
    "transient": "tillfälligt fel",
    "permanent": "bestående fel",
    "skipped": "hoppades över",
}


@dataclass(frozen=True)
class AttemptLine:
    number: int
    at: str
    outcome: str
    reply: str | None


@dataclass(frozen=True)
class LogRow:
    id: int
    due: str
    routine: str
    occurrence: str
    purpose: str
    recipient: str
    address: str
    state: str
    state_text: str
    reason: str | None
    reply: str | None
    sent: str | None
    attempts: tuple[AttemptLine, ...] = field(default_factory=tuple)

    @property
    def resendable(self) -> bool:
        return self.state == "failed"


def _local(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M") if moment else None


def _state(row: models.Notification) -> str:
    if row.status == models.Status.PENDING:
        return "retrying" if outbox.in_retry(row) else "planned"
    if row.status in (models.Status.QUEUED, models.Status.SENDING):
        return "sending"
    return str(row.status)


def delivery_log(
    session: Session, viewer: Viewer, which: str, page: int
) -> tuple[list[LogRow], bool]:
    """One page of the municipality's messages per recipient, newest due first; and whether
    there is a next page. Coordinators only (the route's rule)."""
    n = models.Notification
    query = select(n).where(n.municipality_id == viewer.municipality_id)
    statuses = LOG_FILTERS.get(which, ())
    if statuses:
        query = query.where(n.status.in_(statuses))
    query = query.order_by(n.due_at.desc(), n.id.desc())
    rows = list(session.scalars(query.offset(page * LOG_PAGE).limit(LOG_PAGE + 1)))
    return [_log_row(r) for r in rows[:LOG_PAGE]], len(rows) > LOG_PAGE


def _log_row(row: models.Notification) -> LogRow:
    state = _state(row)
    return LogRow(
        id=row.id,
        due=_local(row.due_at) or "",
        routine=row.routine_key,
        occurrence=row.occurrence,
        purpose=row.purpose,
        recipient=row.recipient_name,
        address=row.recipient_email,
        state=state,
        state_text=STATUS_TEXT.get(state, state),
        reason=row.cancel_reason,
        reply=row.smtp_reply or row.last_error,
        sent=_local(row.sent_at),
        attempts=tuple(
            AttemptLine(
                a.number,
                _local(a.at) or "",
                OUTCOME_TEXT.get(a.outcome, a.outcome),
                " ".join(p for p in (str(a.smtp_code or ""), a.reply or a.error or "") if p)
                or None,
            )
            for a in row.attempts_log
        ),
    )


class NotResendable(Exception):
    """The message is not in this municipality, or is not failed (any more)."""


def resend(session: Session, viewer: Viewer, notification_id: int, now: dt.datetime) -> None:
    """Put one failed message back for sending now, through the outbox's writer; audited."""
    row = session.get(models.Notification, notification_id)
    if row is None or row.municipality_id != viewer.municipality_id:
        raise NotResendable("no such message")
    if not outbox.resend(session, notification_id, now):
        raise NotResendable("not failed")
    session.add(
        models.WebAudit(
            municipality_id=viewer.municipality_id,
            at=now,
            actor_id=viewer.person_id,
            action="message.resend",
            detail={"notification": notification_id, "routine": row.routine_key},
        )
    )
    if row.routine_key in ("case", "report"):
        session.add(
            models.CaseAudit(
                municipality_id=viewer.municipality_id,
                series=row.routine_key,
                reference=row.occurrence,
                at=now,
                actor_id=viewer.person_id,
                actor=viewer.person_key,
                action="message.resend",
                detail={"purpose": row.purpose},
            )
        )
