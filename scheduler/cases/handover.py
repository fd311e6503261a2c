"""A case meeting's participant changing after the invitation went out: CANCEL to the one who
leaves, REQUEST to the one who arrives.

As for routine meetings (scheduler/lifecycle.py): the record of who was sent what
(`invite_record`) is compared with who the meeting's participants are today (the school's role
resolved today, the owner, the family worker and the staff as persons of the profile). Whoever
holds the invitation in the record but is no longer a participant gets a CANCEL for them alone
(the meeting's current SEQUENCE, RFC 5546 3.2.5); whoever is a participant today without
holding the invitation gets the REQUEST (3.2.2.1). Only people of the profile hand over:
guardians and pupils are addressed by e-mail, hold no role and never leave or arrive this way.

Only for a case still active whose meeting is booked and still ahead, and only once its
invitation went out (the record holds someone). A called-off meeting is the CANCEL of
`outbox.build_rows`; a held or past meeting changes nothing.

Purposes: the one who arrives gets the invitation's own purpose (`kallelse-m1`, so a copy the
worker planned when the role changed hands between planning and sending is the same row);
invited again after a CANCEL, `kallelse-m1-ater-<row>`; the one who leaves
`kallelse-m1-lamnar-<row>` (`<row>` the last row the record shows sent to them). The send-time
guard (`guard.py`) accepts these while the invitation itself is still called for.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import local_date
from scheduler.cases.messages import PlannedMessage, participants
from scheduler.cases.recipients import Resolved, Resolver, withheld
from scheduler.cases.subjects import Subject
from scheduler.cases.views import CaseView

LEAVES = "lamnar"
AGAIN = "ater"
LEAVER_TEMPLATE = "arende-avbokad"
_HANDED_OVER = re.compile(r"^(?P<base>kallelse-m\d+(?:-v\d+)?)-(?P<kind>lamnar|ater)-\d+$")


@dataclass(frozen=True)
class Change:
    """One hand-over message: the invitation's message re-addressed, CANCEL or REQUEST."""

    message: PlannedMessage
    recipient: Resolved
    cancel: bool


def handed_over(purpose: str) -> tuple[str, str] | None:
    """(the invitation's purpose, "lamnar" or "ater") of a hand-over row's purpose, or None."""
    found = _HANDED_OVER.match(purpose)
    return (found["base"], found["kind"]) if found else None


def today_participants(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    view: CaseView,
    message: PlannedMessage,
    on: dt.date,
) -> dict[str, Resolved]:
    """The meeting's participants of the profile on `on`, by address (externals left out;
    someone who is not staff, on a subject of suspected abuse, withheld and logged)."""
    resolver = Resolver(session, municipality)
    found: dict[str, Resolved] = {}
    for recipient in participants(view):
        if recipient.kind == "external":
            continue
        for who in resolver.resolve(recipient, on):
            if withheld(session, municipality, subject, message, who):
                continue
            found.setdefault(who.email.strip().lower(), who)
    return found


def changes(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    view: CaseView,
    plan: list[PlannedMessage],
    meetings: dict[int, dict[str, Any]],
    now: dt.datetime,
) -> list[Change]:
    """The hand-over messages the case calls for at `now` (see the module's text)."""
    found: list[Change] = []
    for message in plan:
        if message.meeting is None or not message.purpose.startswith("kallelse-"):
            continue
        meeting = meetings.get(message.meeting) or {}
        state = view.meeting(message.meeting)
        if meeting.get("method") != "REQUEST" or state is None or state.start <= now:
            continue
        record = _record(session, municipality.id, str(meeting["uid"]))
        if not record:
            continue  # the invitation has not gone out yet: the plan's own rows cover it
        organizer = str((meeting.get("organizer") or {}).get("email", "")).strip().lower()
        today = today_participants(session, municipality, subject, view, message, local_date(now))
        due = replace(message, due_at=now, late="send")
        by_email = {r.recipient_email: r for r in record}
        for r in record:
            person = session.get(models.Person, r.person_id) if r.person_id else None
            if person is None or r.status != "CONFIRMED" or r.recipient_email == organizer:
                continue  # externals do not hand over; the organizer's copy is not an invite
            if r.recipient_email in today:
                continue
            leaver = Resolved(person.key, person.id, r.recipient_name, r.recipient_email)
            purpose = f"{message.purpose}-{LEAVES}-{r.notification_id}"
            found.append(
                Change(replace(due, purpose=purpose, template=LEAVER_TEMPLATE), leaver, True)
            )
        for email, who in today.items():
            had = by_email.get(email)
            if email == organizer or (had is not None and had.status == "CONFIRMED"):
                continue
            purpose = (
                message.purpose
                if had is None
                else f"{message.purpose}-{AGAIN}-{had.notification_id}"
            )
            found.append(Change(replace(due, purpose=purpose), who, False))
    return found


def still_participant(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    view: CaseView,
    message: PlannedMessage,
    email: str,
    on: dt.date,
) -> bool:
    """Whether `email` is one of the meeting's participants on `on` (a CANCEL to one who
    leaves is checked again at send time: back in the role, they keep the meeting)."""
    found = today_participants(session, municipality, subject, view, message, on)
    return email.strip().lower() in found


def _record(session: Session, municipality_id: int, uid: str) -> list[models.InviteRecord]:
    return list(
        session.scalars(
            select(models.InviteRecord)
            .where(
                models.InviteRecord.municipality_id == municipality_id,
                models.InviteRecord.uid == uid,
            )
            .order_by(models.InviteRecord.id)
        )
    )
