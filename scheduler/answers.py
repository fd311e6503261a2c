"""Participants' answers to invitations, and the convener's summary of who has not answered.

An answer (worker.replies.Reply) is matched through the outbox, the record of who was sent
what: the invitations sent to the attendee's address whose meeting has the reply's UID. So
an answer counts only from someone who was invited, for a meeting that exists, whatever
kind (a routine's booked meeting or a case meeting). It is ignored, with a reason, when

- no invitation with that UID was ever sent (`unknown-meeting`),
- the meeting exists but this address was not invited to it (`unknown-attendee`),
- the last thing sent to them was a cancellation (`cancelled`),
- its SEQUENCE is older than the latest invitation they were sent, or than the answer
  already recorded (`old-sequence`): an answer to a meeting's old time says nothing about
  the new one (RFC 5546 2.1.5);
- it is the same version as the recorded answer and not newer by DTSTAMP (`stale`).

The non-responders summary is an outbox row like every other message (key
`answers/<municipality>/<routine>/<occurrence>/v<sequence>/<person>`), planned for the
convener a few working days before each booked meeting of a routine; its list is built when
it is sent (`summary_context`), so it names exactly those who have not answered by then:
names and roles only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import String, and_, cast, func, select
from sqlalchemy.orm import Session

import models
from core.errors import MeetingNotFound
from models import Status
from scheduler import outbox
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import summary as case_summary
from scheduler.cases.views import CASE
from scheduler.identity import event_uid, message_id_for, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import ANSWERS_ROUTINE_KEY
from scheduler.workdays import add_working_days

log = logging.getLogger("samverkan.answers")

SUMMARY_PURPOSE = "svar-sammanstallning"
SUMMARY_TEMPLATE = "svar-sammanstallning"
# Working days before the meeting's day on which the convener gets the summary.
SUMMARY_WORKING_DAYS_BEFORE = 3
PARTSTAT_NAMES = {
    "ACCEPTED": "kommer",
    "DECLINED": "kommer inte",
    "TENTATIVE": "kanske",
    "DELEGATED": "har skickat någon annan",
}


class ReplyLike(Protocol):
    """What an answer read from a reply carries (worker.replies.Reply)."""

    @property
    def uid(self) -> str: ...
    @property
    def attendee(self) -> str: ...
    @property
    def partstat(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def dtstamp(self) -> dt.datetime | None: ...


class AnswerOutcome(StrEnum):
    RECORDED = "recorded"
    UNKNOWN_MEETING = "unknown-meeting"
    UNKNOWN_ATTENDEE = "unknown-attendee"
    CANCELLED = "cancelled"
    OLD_SEQUENCE = "old-sequence"
    STALE = "stale"

    @property
    def recorded(self) -> bool:
        return self is AnswerOutcome.RECORDED


# --- recording ----------------------------------------------------------------------------


def _meeting_of(row: models.Notification) -> dict[str, Any] | None:
    meeting = row.context.get("meeting") if isinstance(row.context, dict) else None
    return meeting if isinstance(meeting, dict) else None


def _is_invitation(row: models.Notification, uid: str | None = None) -> bool:
    """A sent invitation (REQUEST or CANCEL) to an attendee, not the convener's own copy."""
    meeting = _meeting_of(row)
    if meeting is None or (uid is not None and meeting.get("uid") != uid):
        return False
    organizer = meeting.get("organizer") or {}
    own = str(organizer.get("email", "")).strip().lower()
    return row.recipient_email.strip().lower() != own


def _sent_to(session: Session, address: str) -> list[models.Notification]:
    return list(
        session.scalars(
            select(models.Notification)
            .where(
                models.Notification.status == Status.SENT,
                func.lower(models.Notification.recipient_email) == address,
            )
            .order_by(models.Notification.sent_at, models.Notification.id)
        )
    )


def _uid_known(session: Session, uid: str) -> bool:
    """Whether any invitation with this UID was sent (a text search of the JSON context,
    only run for answers from addresses that were never sent it)."""
    import json

    needle = f'"uid": {json.dumps(uid)}'
    found = session.scalar(
        select(models.Notification.id)
        .where(
            models.Notification.status == Status.SENT,
            cast(models.Notification.context, String).contains(needle, autoescape=True),
        )
        .limit(1)
    )
    return found is not None


def record_answer(session: Session, reply: ReplyLike, now: dt.datetime) -> AnswerOutcome:
    """Record `reply` as its attendee's answer to its meeting, or say why it was ignored."""
    address = reply.attendee.strip().lower()
    invitations = [r for r in _sent_to(session, address) if _is_invitation(r, reply.uid)]
    if not invitations:
        return (
            AnswerOutcome.UNKNOWN_ATTENDEE
            if _uid_known(session, reply.uid)
            else (AnswerOutcome.UNKNOWN_MEETING)
        )
    latest = max(invitations, key=lambda r: (_sequence(r), r.sent_at or now, r.id))
    meeting = _meeting_of(latest) or {}
    if meeting.get("method") == "CANCEL":
        return AnswerOutcome.CANCELLED
    if reply.sequence < _sequence(latest):
        return AnswerOutcome.OLD_SEQUENCE
    existing = session.scalar(
        select(models.Answer).where(
            models.Answer.uid == reply.uid, models.Answer.attendee_email == address
        )
    )
    dtstamp = reply.dtstamp or now
    if existing is not None:
        if reply.sequence < existing.sequence:
            return AnswerOutcome.OLD_SEQUENCE
        if reply.sequence == existing.sequence and dtstamp <= existing.dtstamp:
            return AnswerOutcome.STALE
        existing.partstat = reply.partstat
        existing.sequence = reply.sequence
        existing.dtstamp = dtstamp
        existing.received_at = now
        return AnswerOutcome.RECORDED
    session.add(
        models.Answer(
            municipality_id=latest.municipality_id,
            uid=reply.uid,
            routine_key=latest.routine_key,
            occurrence=latest.occurrence,
            attendee_email=address,
            person_id=latest.person_id,
            partstat=reply.partstat,
            sequence=reply.sequence,
            dtstamp=dtstamp,
            received_at=now,
        )
    )
    session.flush()
    return AnswerOutcome.RECORDED


def _sequence(row: models.Notification) -> int:
    meeting = _meeting_of(row) or {}
    try:
        return int(meeting.get("sequence", 0))
    except (TypeError, ValueError):
        return 0


# --- who was invited, and their answers ------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """One person invited to a meeting (the latest invitation they were sent)."""

    name: str
    roles: tuple[str, ...]
    email: str
    person_id: int | None
    invited_sequence: int
    cancelled: bool  # the last thing they were sent was a cancellation
    answer: str | None  # ACCEPTED, DECLINED, TENTATIVE, DELEGATED, or None
    answered_sequence: int | None
    external: bool = False  # a guardian or pupil of a case meeting (an address only)

    @property
    def answered(self) -> bool:
        """An answer to the version of the meeting they were last sent."""
        return self.answer is not None and (self.answered_sequence or 0) >= self.invited_sequence


@dataclass(frozen=True)
class MeetingAnswers:
    uid: str
    routine_key: str
    routine_name: str
    occurrence: str
    start: str | None
    end: str | None
    sequence: int
    organizer: str | None
    participants: list[Participant] = field(default_factory=list)

    @property
    def invited(self) -> list[Participant]:
        return [p for p in self.participants if not p.cancelled]

    @property
    def not_answered(self) -> list[Participant]:
        return [p for p in self.invited if not p.answered]


def meeting_answers(
    session: Session,
    municipality_id: int,
    routine_key: str,
    occurrence: str,
    uid: str | None = None,
) -> MeetingAnswers | None:
    """Who was sent an invitation to this occurrence's meeting (of a case's meetings, the one
    with `uid`), and each one's answer; None when no invitation to it was sent."""
    rows = [
        r
        for r in session.scalars(
            select(models.Notification)
            .where(
                models.Notification.municipality_id == municipality_id,
                models.Notification.routine_key == routine_key,
                models.Notification.occurrence == occurrence,
                models.Notification.status == Status.SENT,
            )
            .order_by(models.Notification.sent_at, models.Notification.id)
        )
        if _is_invitation(r, uid)
    ]
    if not rows:
        return None
    latest_per_person: dict[str, models.Notification] = {}
    for row in rows:
        address = row.recipient_email.strip().lower()
        current = latest_per_person.get(address)
        if current is None or _sequence(row) >= _sequence(current):
            latest_per_person[address] = row
    newest = max(rows, key=lambda r: (_sequence(r), r.id))
    meeting = _meeting_of(newest) or {}
    uid = str(meeting.get("uid"))
    answers = {
        a.attendee_email: a
        for a in session.scalars(select(models.Answer).where(models.Answer.uid == uid))
    }
    participants = []
    for address, row in sorted(latest_per_person.items(), key=lambda i: i[1].recipient_name):
        answer = answers.get(address)
        recipient = row.context.get("recipient") or {}
        participants.append(
            Participant(
                name=row.recipient_name,
                roles=tuple(str(r) for r in recipient.get("roles", ())),
                email=address,
                person_id=row.person_id,
                invited_sequence=_sequence(row),
                cancelled=(_meeting_of(row) or {}).get("method") == "CANCEL",
                answer=answer.partstat if answer else None,
                answered_sequence=answer.sequence if answer else None,
                external=bool(recipient.get("external")),
            )
        )
    organizer = meeting.get("organizer") or {}
    return MeetingAnswers(
        uid=uid,
        routine_key=routine_key,
        routine_name=str((newest.context.get("routine") or {}).get("name", routine_key)),
        occurrence=occurrence,
        start=meeting.get("start"),
        end=meeting.get("end"),
        sequence=_sequence(newest),
        organizer=organizer.get("name"),
        participants=participants,
    )


def booked_meeting(
    session: Session, municipality_id: int, routine_key: str, day: dt.date
) -> MeetingAnswers:
    """The answers to the booked meeting of `routine_key` held on `day` (local date).

    Raises MeetingNotFound naming the routine and the day (never anyone's data)."""
    routine = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == municipality_id, models.Routine.key == routine_key
        )
    )
    if routine is None:
        # What was typed is not repeated: it matched nothing, so it may be anything.
        raise MeetingNotFound("ROUTINE: no routine with that key in this municipality")
    for booking in session.scalars(
        select(models.Booking).where(models.Booking.routine_id == routine.id)
    ):
        if local_date(booking.starts_at) == day:
            found = meeting_answers(session, municipality_id, routine_key, booking.occurrence)
            if found is None:
                raise MeetingNotFound(
                    f"the {routine_key!r} meeting on {day} is booked, but no invitation to it "
                    "has been sent yet"
                )
            return found
    raise MeetingNotFound(f"no {routine_key!r} meeting is booked on {day}")


# --- the non-responders summary -------------------------------------------------------------


def summary_key(municipality: str, routine: str, occurrence: str, sequence: int, who: str) -> str:
    return f"answers/{municipality}/{routine}/{occurrence}/v{sequence}/{who}"


def summary_due(start: dt.datetime, send_time: dt.time) -> dt.datetime:
    """SUMMARY_WORKING_DAYS_BEFORE working days before the meeting's day, at send time."""
    day = add_working_days(local_date(start), -SUMMARY_WORKING_DAYS_BEFORE)
    return dt.datetime.combine(day, send_time, tzinfo=STOCKHOLM).astimezone(dt.UTC)


def plan_summaries(session: Session, now: dt.datetime) -> int:
    """Plan (or re-plan) the convener's summary for every booked routine meeting still to
    come whose invitations went out; return the rows created. Safe to run every few minutes:
    keys are idempotent, and a moved or called-off meeting's pending summary is cancelled."""
    created = 0
    for municipality in session.scalars(select(models.Municipality)):
        wanted = _wanted_summaries(session, municipality, now)
        wanted += _wanted_case_summaries(session, municipality, now)
        scope = and_(
            models.Notification.municipality_id == municipality.id,
            models.Notification.routine_key == ANSWERS_ROUTINE_KEY,
            models.Notification.due_at >= now,
        )
        result = outbox.sync(
            session, wanted, scope, now, "the meeting was moved, called off or has no invitees"
        )
        created += result.created
    return created


def _wanted_summaries(
    session: Session, municipality: models.Municipality, now: dt.datetime
) -> list[outbox.Wanted]:
    send_time = MunicipalitySettings.of(municipality).send_time
    domain = sender_domain(municipality.sender_email)
    wanted = []
    bookings = session.execute(
        select(models.Booking, models.Routine)
        .join(models.Routine, models.Routine.id == models.Booking.routine_id)
        .where(
            models.Routine.municipality_id == municipality.id,
            models.Routine.active.is_(True),
            models.Booking.starts_at > now,
        )
    )
    for booking, routine in bookings:
        view = meeting_answers(session, municipality.id, routine.key, booking.occurrence)
        if view is None or not view.invited:
            continue
        uid = event_uid(municipality.key, routine.key, booking.occurrence, domain)
        if view.uid != uid or view.sequence != booking.sequence:
            continue  # the invitations for the booking as it stands have not gone out yet
        due = summary_due(booking.starts_at, send_time)
        if due < now:
            continue  # booked too late for a summary before the meeting
        convener = _convener(session, municipality.id, view, routine.key, booking.occurrence)
        if convener is None:
            continue
        wanted.append(
            _summary(
                municipality,
                SummaryFor(
                    routine_key=routine.key,
                    routine_name=routine.name,
                    occurrence=booking.occurrence,
                    purpose=f"{SUMMARY_PURPOSE}-{routine.key}-v{booking.sequence}",
                    uid=uid,
                    sequence=booking.sequence,
                    start=booking.starts_at,
                    end=booking.ends_at,
                ),
                convener,
                due,
            )
        )
    return wanted


def _wanted_case_summaries(
    session: Session, municipality: models.Municipality, now: dt.datetime
) -> list[outbox.Wanted]:
    """The case owner's summary for each booked meeting of an active case still to come whose
    invitations (as the meeting stands) went out. Its context holds the neutral reference only."""
    send_time = MunicipalitySettings.of(municipality).send_time
    wanted = []
    for meeting in case_summary.meetings_ahead(session, municipality, now):
        view = meeting_answers(session, municipality.id, CASE, meeting.reference, meeting.uid)
        if view is None or not view.invited or view.sequence != meeting.sequence:
            continue
        due = summary_due(meeting.start, send_time)
        if due < now:
            continue
        wanted.append(
            _summary(
                municipality,
                SummaryFor(
                    routine_key=CASE,
                    routine_name="Samverkansmöte",
                    occurrence=meeting.occurrence,
                    purpose=f"{SUMMARY_PURPOSE}-{CASE}-m{meeting.number}-v{meeting.sequence}",
                    uid=meeting.uid,
                    sequence=meeting.sequence,
                    start=meeting.start,
                    end=meeting.end,
                    case_meeting={"reference": meeting.reference, "number": meeting.number},
                ),
                meeting.owner,
                due,
            )
        )
    return wanted


@dataclass(frozen=True)
class SummaryFor:
    """The meeting a non-responders summary is about (a routine's or a case's)."""

    routine_key: str
    routine_name: str
    occurrence: str
    purpose: str
    uid: str
    sequence: int
    start: dt.datetime
    end: dt.datetime
    case_meeting: dict[str, Any] | None = None  # the neutral reference and the meeting's number


def _summary(
    municipality: models.Municipality,
    meeting: SummaryFor,
    organizer: models.Person,
    due: dt.datetime,
) -> outbox.Wanted:
    """The summary's outbox row, to the organizer; its list is built when it is sent."""
    key = summary_key(
        municipality.key, meeting.routine_key, meeting.occurrence, meeting.sequence, organizer.key
    )
    context: dict[str, Any] = {
        "municipality": municipality.name,
        "sender": {"name": municipality.sender_name, "email": municipality.sender_email},
        "routine": {"key": meeting.routine_key, "name": meeting.routine_name},
        "occurrence": {"key": meeting.occurrence},
        # Not "meeting": that key makes the worker attach an invitation.
        "booked": {
            "uid": meeting.uid,
            "sequence": meeting.sequence,
            "start": meeting.start.astimezone(STOCKHOLM).isoformat(),
            "end": meeting.end.astimezone(STOCKHOLM).isoformat(),
        },
        "recipient": {"name": organizer.name},
    }
    if meeting.case_meeting is not None:
        context["case_meeting"] = meeting.case_meeting
    return outbox.Wanted(
        key=key,
        municipality_id=municipality.id,
        routine_key=ANSWERS_ROUTINE_KEY,
        occurrence=meeting.occurrence,
        purpose=meeting.purpose,
        message_id=message_id_for(key, sender_domain(municipality.sender_email)),
        template=SUMMARY_TEMPLATE,
        context=context,
        person_id=organizer.id,
        roles=(),
        recipient_email=organizer.email,
        recipient_name=organizer.name,
        due_at=due,
    )


def _convener(
    session: Session, municipality_id: int, view: MeetingAnswers, routine: str, occurrence: str
) -> models.Person | None:
    """The organizer named in the latest invitations: the person with that address."""
    row = session.scalar(
        select(models.Notification)
        .where(
            models.Notification.municipality_id == municipality_id,
            models.Notification.routine_key == routine,
            models.Notification.occurrence == occurrence,
            models.Notification.status == Status.SENT,
        )
        .order_by(models.Notification.id.desc())
        .limit(1)
    )
    meeting = _meeting_of(row) if row is not None else None
    email = str(((meeting or {}).get("organizer") or {}).get("email", "")).strip().lower()
    if not email:
        return None
    return session.scalar(
        select(models.Person)
        .where(
            models.Person.municipality_id == municipality_id,
            func.lower(models.Person.email) == email,
            models.Person.active.is_(True),
        )
        .limit(1)
    )


def summary_context(session: Session, row: models.Notification) -> dict[str, Any]:
    """The summary's context as of now: the row's own, plus who has not answered."""
    context = dict(row.context)
    booked = context.get("booked") or {}
    routine = (context.get("routine") or {}).get("key", "")
    case_meeting = context.get("case_meeting")
    if case_meeting:
        return _case_summary_context(session, row, context, case_meeting, booked)
    view = meeting_answers(session, row.municipality_id, routine, row.occurrence)
    participants: Sequence[Participant] = view.invited if view is not None else []
    missing = [p for p in participants if not p.answered]
    context["invited_count"] = len(participants)
    context["answered_count"] = len(participants) - len(missing)
    context["not_answered"] = [
        {"name": p.name, "roles": list(p.roles)} for p in sorted(missing, key=lambda p: p.name)
    ]
    context["booked"] = booked
    return context


def _case_summary_context(
    session: Session,
    row: models.Notification,
    context: dict[str, Any],
    case_meeting: dict[str, Any],
    booked: dict[str, Any],
) -> dict[str, Any]:
    """A case meeting's summary: staff who have not answered by name and role, everyone else
    (guardians, pupils) only counted: nothing in it may identify the child."""
    municipality = session.get_one(models.Municipality, row.municipality_id)
    view = meeting_answers(
        session, row.municipality_id, CASE, str(case_meeting["reference"]), booked.get("uid")
    )
    participants: Sequence[Participant] = view.invited if view is not None else []
    missing = [p for p in participants if not p.answered]
    named = [
        p
        for p in missing
        if case_summary.named_in_summary(session, municipality, p.person_id, p.external)
    ]
    context["invited_count"] = len(participants)
    context["answered_count"] = len(participants) - len(missing)
    context["not_answered"] = [
        {"name": p.name, "roles": list(p.roles)} for p in sorted(named, key=lambda p: p.name)
    ]
    context["others_not_answered"] = len(missing) - len(named)
    context["missing_count"] = len(missing)
    context["booked"] = booked
    return context
