"""The record of who was sent which invitation, and the checks that read it.

An outbox row whose context holds a `meeting` carries an invitation (iTIP over e-mail: RFC 5546,
RFC 6047). When such a row is sent, `record_sent` writes, per meeting UID and recipient, the
SEQUENCE and METHOD that went out (`invite_record`), and makes every older row still waiting for
that recipient obsolete (cancelled, reason "superseded"). Before a row is sent, `refusal` says
why it must not go: it carries an older SEQUENCE than the recipient already has, or it cancels
an invitation the recipient does not hold. RFC 5546 2.1.5: a calendar takes the message with
the higher SEQUENCE (then the later DTSTAMP) as the current one; an older one must not arrive
after it, since a reader that does not compare would show the old time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

import models
from models import Status
from scheduler.outbox.rows import cancel

SUPERSEDED = "superseded"


def invite_method(context: dict[str, Any], recipient_email: str) -> tuple[str, str]:
    """(METHOD, STATUS) of the invitation a row carries to its recipient.

    The convener (the organizer) is not an attendee of her own meeting: her copy is PUBLISH,
    cancelled by a PUBLISH with STATUS:CANCELLED."""
    meeting = context["meeting"]
    method = str(meeting.get("method", "REQUEST"))
    status = "CANCELLED" if method == "CANCEL" else "CONFIRMED"
    organizer = meeting.get("organizer") or context.get("sender") or {}
    own = recipient_email.strip().lower() == str(organizer.get("email", "")).strip().lower()
    return ("PUBLISH" if own else method), status


def _sequence(row: models.Notification) -> int:
    return int(row.context["meeting"].get("sequence", 0))


def _record_for(session: Session, uid: str, email: str) -> models.InviteRecord | None:
    return session.scalar(
        select(models.InviteRecord).where(
            models.InviteRecord.uid == uid,
            models.InviteRecord.recipient_email == email.strip().lower(),
        )
    )


def refusal(session: Session, row: models.Notification) -> str | None:
    """Why the invitation `row` carries must not be sent now (None: send it)."""
    meeting = (row.context or {}).get("meeting")
    if not meeting or not meeting.get("uid"):
        return None
    sequence = _sequence(row)
    had = _record_for(session, str(meeting["uid"]), row.recipient_email)
    if had is not None and sequence < had.sequence:
        return (
            f"{SUPERSEDED}: the recipient already has SEQUENCE {had.sequence}, this is {sequence}"
        )
    if meeting.get("method") == "CANCEL" and (had is None or had.status == "CANCELLED"):
        return "the recipient holds no invitation to this meeting to cancel"
    return None


def record_sent(row: models.Notification, as_of: dt.datetime) -> None:
    """After `row` was sent: record its invitation, and make older rows waiting obsolete."""
    meeting = (row.context or {}).get("meeting")
    if not meeting or not meeting.get("uid"):
        return
    session = object_session(row)
    assert session is not None
    uid, email = str(meeting["uid"]), row.recipient_email.strip().lower()
    sequence = _sequence(row)
    method, status = invite_method(row.context, row.recipient_email)
    had = _record_for(session, uid, email)
    if had is None:
        had = models.InviteRecord(uid=uid, recipient_email=email)
        session.add(had)
    elif had.sequence > sequence:  # refused at send time; kept for a row sent regardless
        return
    had.municipality_id = row.municipality_id
    had.routine_key = row.routine_key
    had.occurrence = row.occurrence
    had.recipient_name = row.recipient_name
    had.person_id = row.person_id
    had.sequence = sequence
    had.method = method
    had.status = status
    had.notification_id = row.id
    had.sent_at = as_of
    _supersede(session, row, uid, email, sequence, as_of)


def _supersede(
    session: Session,
    sent: models.Notification,
    uid: str,
    email: str,
    sequence: int,
    now: dt.datetime,
) -> None:
    """Cancel rows still waiting (pending, or pending for a retry) for the same meeting and
    recipient with a lower SEQUENCE: they would arrive after the newer one."""
    n = models.Notification
    waiting = session.scalars(
        select(n).where(
            n.municipality_id == sent.municipality_id,
            n.routine_key == sent.routine_key,
            n.occurrence == sent.occurrence,
            n.status == Status.PENDING,
            n.id != sent.id,
        )
    )
    for row in waiting:
        meeting = (row.context or {}).get("meeting") or {}
        if (
            meeting.get("uid") == uid
            and row.recipient_email.strip().lower() == email
            and int(meeting.get("sequence", 0)) < sequence
        ):
            cancel(row, now, f"{SUPERSEDED} by SEQUENCE {sequence}, sent")


def supersede_pending(session: Session, municipality_id: int, now: dt.datetime) -> int:
    """Cancel rows waiting (a retry included) whose invitation is older than the booking's
    SEQUENCE: a re-plan has planned the newer one, which must not be overtaken."""
    n = models.Notification
    bookings = session.execute(
        select(models.Routine.key, models.Booking.occurrence, models.Booking.sequence)
        .join(models.Booking, models.Booking.routine_id == models.Routine.id)
        .where(models.Routine.municipality_id == municipality_id, models.Booking.sequence > 0)
    ).all()
    done = 0
    for routine_key, occurrence, current in bookings:
        for row in session.scalars(
            select(n).where(
                n.municipality_id == municipality_id,
                n.routine_key == routine_key,
                n.occurrence == occurrence,
                n.status == Status.PENDING,
            )
        ):
            meeting = (row.context or {}).get("meeting")
            if meeting and int(meeting.get("sequence", 0)) < current:
                cancel(row, now, f"{SUPERSEDED} by SEQUENCE {current}")
                done += 1
    return done
