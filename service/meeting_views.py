"""The meetings page: the booked meetings a `Viewer` may see, the routine meetings they may
book that have no booking yet, and one meeting's invitees and their answers (booking, moving
and calling off: `service.meetings`).

Every function starts from the viewer's municipality, so nobody sees another municipality's
meetings. Routine meetings: a coordinator sees all of them; others those they convene (hold
one of the routine's owner roles) or were invited to (a message of that meeting addressed to
them, or a row of `invite_record`). Case meetings: only for those entitled to the case
(`service.todo_view.case_visible`), named by the neutral case reference only; every listing and
every view of one is written to the case's audit (`case_audit`).

Who was invited comes from the record of who was sent what (`invite_record`), not from who
holds the roles today; an external participant of a case meeting is shown by role
("Vårdnadshavare", "Elev"), never by address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.dates import MONTHS
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.directory import load_directory
from scheduler.identity import event_uid, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import Routine
from scheduler.workdays import working_day_after
from service.meetings import (
    MeetingNotShown,
    booked,
    convenes,
    invited_to,
    routine_spec,
    to_book,
)
from service.todo_view import case_visible
from service.viewer import Viewer

PAST_DAYS = 30  # how far back the list shows meetings already held
ANSWER_TEXT = {
    "ACCEPTED": "kommer",
    "DECLINED": "kommer inte",
    "TENTATIVE": "kanske",
    "DELEGATED": "delegerat",
}
NO_ANSWER = "inget svar"
EXTERNAL_LABELS = {"Vårdnadshavare": "vårdnadshavare", "Elev": "elev"}
STATE_TEXT = {"booked": "Bokat", "held": "Hållet", "cancelled": "Inställt"}
CASE_SERIES = "case"


# --- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingLine:
    kind: str  # "routine" or "case"
    title: str
    start: dt.datetime  # local
    when: str
    place: str | None
    state: str
    path: str

    @property
    def state_text(self) -> str:
        return STATE_TEXT.get(self.state, self.state)


def meetings(session: Session, viewer: Viewer, now: dt.datetime) -> list[MeetingLine]:
    """The booked meetings ahead and of the last PAST_DAYS days the viewer may see, by time."""
    since = now - dt.timedelta(days=PAST_DAYS)
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    places = MunicipalitySettings.of(municipality).places
    found: list[MeetingLine] = []
    invited = invited_to(session, viewer)
    b, r = models.Booking, models.Routine
    rows = session.execute(
        select(b, r)
        .join(r, r.id == b.routine_id)
        .where(r.municipality_id == viewer.municipality_id, r.active.is_(True))
        .where(b.starts_at >= since)
    )
    for booking, routine_row in rows:
        mine = viewer.is_coordinator or (routine_row.key, booking.occurrence) in invited
        if not mine and not convenes(session, viewer, routine_spec(routine_row), local_date(now)):
            continue
        found.append(
            MeetingLine(
                "routine",
                routine_row.name,
                booking.starts_at.astimezone(STOCKHOLM),
                _when(booking.starts_at, booking.ends_at),
                _place_name(places, booking.location),
                "cancelled" if booking.cancelled_at is not None else "booked",
                f"/moten/rutin/{routine_row.key}/{booking.occurrence}",
            )
        )
    c, m = models.Case, models.CaseMeeting
    case_rows = session.execute(
        select(m, c)
        .join(c, c.id == m.case_id)
        .where(c.municipality_id == viewer.municipality_id, m.starts_at >= since)
        .order_by(c.reference, m.number)
    )
    listed: set[str] = set()
    for meeting, case in case_rows:
        if not case_visible(viewer, case):
            continue
        found.append(
            MeetingLine(
                "case",
                f"Ärende {case.reference}, möte {meeting.number}",
                meeting.starts_at.astimezone(STOCKHOLM),
                _when(meeting.starts_at, meeting.ends_at),
                _place_name(places, meeting.location),
                meeting.state,
                f"/moten/arende/{case.reference}/{meeting.number}",
            )
        )
        listed.add(case.reference)
    for reference in sorted(listed):
        _audit_case(session, viewer, reference, "web.listed", {"page": "moten"}, now)
    found.sort(key=lambda line: (line.start, line.title))
    return found


# --- the meetings still to book ------------------------------------------------------------


@dataclass(frozen=True)
class UnbookedLine:
    """A routine meeting to book, with what its booking form needs."""

    routine: str  # the routine's key
    occurrence: str
    title: str
    month: str  # "april 2027"
    window: str  # the working days it may be held on: "2027-04-01 – 2027-04-30"
    time: str  # the routine's usual start time, to fill in; "" if it has none
    place: str | None  # the routine's usual place (a key)
    places: list[tuple[str, str]]  # (key, name) of the profile's places
    cancelled: bool  # booked once and called off: booked again here
    path: str

    @property
    def form_id(self) -> str:
        return f"{self.routine}-{self.occurrence}"


def meetings_to_book(session: Session, viewer: Viewer, now: dt.datetime) -> list[UnbookedLine]:
    """This and next occurrence of the routine meetings the viewer convenes (a coordinator:
    all of the municipality's) with no booking yet (`service.meetings.to_book`)."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    places = MunicipalitySettings.of(municipality).places
    choices = [(key, _place_name(places, key) or key) for key in places]
    found = []
    for item in to_book(session, viewer, now):
        occurrence, meeting = item.occurrence, item.routine.meeting
        assert meeting is not None and item.routine.when.month is not None
        month = item.routine.when.month
        start = working_day_after(dt.date(int(occurrence.key), month, 1))
        found.append(
            UnbookedLine(
                routine=item.routine_row.key,
                occurrence=occurrence.key,
                title=item.routine_row.name,
                month=f"{MONTHS[month - 1]} {occurrence.key}",
                window=f"{start} – {occurrence.window_end}",
                time=meeting.time.strftime("%H:%M") if meeting.time is not None else "",
                place=meeting.place,
                places=choices,
                cancelled=item.cancelled,
                path=f"/moten/rutin/{item.routine_row.key}/{occurrence.key}",
            )
        )
    return found


# --- one meeting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitee:
    name: str
    roles: str
    answer: str
    earlier: bool  # the answer was to an earlier version (time or place) of the meeting
    withdrawn: bool  # the last thing sent to them was a cancellation


@dataclass(frozen=True)
class MeetingDetail:
    kind: str
    title: str
    when: str
    date: str  # local, for the move form
    time: str
    place: str | None
    convener: str
    state: str
    version: int
    invitees: list[Invitee] = field(default_factory=list)
    may_change: bool = False
    path: str = ""
    case_reference: str | None = None

    @property
    def state_text(self) -> str:
        return STATE_TEXT.get(self.state, self.state)

    @property
    def invited(self) -> list[Invitee]:
        return [i for i in self.invitees if not i.withdrawn]

    @property
    def answered(self) -> int:
        return sum(1 for i in self.invited if i.answer != NO_ANSWER and not i.earlier)


def routine_meeting(
    session: Session, viewer: Viewer, routine_key: str, occurrence: str, now: dt.datetime
) -> MeetingDetail:
    """A booked routine meeting, its invitees and their answers; MeetingNotShown when the
    viewer may not see it."""
    municipality, routine_row, booking = booked(session, viewer, routine_key, occurrence)
    routine = routine_spec(routine_row)
    convener = convenes(session, viewer, routine, local_date(now))
    invited = (routine_key, occurrence) in invited_to(session, viewer)
    if not (viewer.is_coordinator or convener or invited):
        raise MeetingNotShown(routine_key)
    uid = event_uid(
        municipality.key, routine_key, occurrence, sender_domain(municipality.sender_email)
    )
    start = booking.starts_at.astimezone(STOCKHOLM)
    cancelled = booking.cancelled_at is not None
    return MeetingDetail(
        kind="routine",
        title=routine_row.name,
        when=_when(booking.starts_at, booking.ends_at),
        date=start.date().isoformat(),
        time=start.strftime("%H:%M"),
        place=_place_name(MunicipalitySettings.of(municipality).places, booking.location),
        convener=", ".join(_conveners(session, municipality, routine, local_date(now))) or "–",
        state="cancelled" if cancelled else "booked",
        version=booking.sequence,
        invitees=_invitees(session, municipality.id, uid),
        may_change=(viewer.is_coordinator or convener) and not cancelled and start > now,
        path=f"/moten/rutin/{routine_key}/{occurrence}",
    )


def case_meeting(
    session: Session, viewer: Viewer, reference: str, number: int, now: dt.datetime
) -> MeetingDetail:
    """A case meeting, for those entitled to the case; the view is written to its audit."""
    case = session.scalar(
        select(models.Case).where(
            models.Case.municipality_id == viewer.municipality_id,
            models.Case.reference == reference,
        )
    )
    if case is None or not case_visible(viewer, case):
        raise MeetingNotShown(reference)
    meeting = next((m for m in case.meetings if m.number == number), None)
    if meeting is None:
        raise MeetingNotShown(reference)
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    owner = session.get_one(models.Person, case.owner_id)
    uid = event_uid(
        municipality.key,
        CASE_SERIES,
        f"{reference}-m{number}",
        sender_domain(municipality.sender_email),
    )
    _audit_case(session, viewer, reference, "web.viewed", {"page": "moten", "meeting": number}, now)
    start = meeting.starts_at.astimezone(STOCKHOLM)
    return MeetingDetail(
        kind="case",
        title=f"Ärende {reference}, möte {number}",
        when=_when(meeting.starts_at, meeting.ends_at),
        date=start.date().isoformat(),
        time=start.strftime("%H:%M"),
        place=_place_name(MunicipalitySettings.of(municipality).places, meeting.location),
        convener=f"{owner.name} (processbärare)",
        state=meeting.state,
        version=meeting.sequence,
        invitees=_invitees(session, municipality.id, uid),
        path=f"/moten/arende/{reference}/{number}",
        case_reference=reference,
    )


def _invitees(session: Session, municipality_id: int, uid: str) -> list[Invitee]:
    i = models.InviteRecord
    records = session.scalars(
        select(i)
        .where(i.municipality_id == municipality_id, i.uid == uid, i.method != "PUBLISH")
        .order_by(i.recipient_name, i.id)
    )
    answers = {
        a.attendee_email: a
        for a in session.scalars(
            select(models.Answer).where(
                models.Answer.municipality_id == municipality_id, models.Answer.uid == uid
            )
        )
    }
    found = []
    for record in records:
        row = session.get(models.Notification, record.notification_id)
        context = (row.context if row is not None else None) or {}
        roles = [str(r) for r in (context.get("recipient") or {}).get("roles", ())]
        name = record.recipient_name
        if record.person_id is None:
            # Someone outside the staff (a guardian, the pupil): by role only, never by name
            # or address.
            label = next((r for r in roles if r in EXTERNAL_LABELS), "Vårdnadshavare")
            name, roles = label, []
        answer = answers.get(record.recipient_email)
        found.append(
            Invitee(
                name=name,
                roles=", ".join(roles),
                answer=ANSWER_TEXT.get(answer.partstat, NO_ANSWER) if answer else NO_ANSWER,
                earlier=answer is not None and answer.sequence < record.sequence,
                withdrawn=record.status == "CANCELLED",
            )
        )
    return found


# --- helpers -------------------------------------------------------------------------------------


def _conveners(
    session: Session, municipality: models.Municipality, routine: Routine, today: dt.date
) -> list[str]:
    directory = load_directory(
        session, municipality.id, dict(MunicipalitySettings.of(municipality).role_names)
    )
    return [h.name for h in directory.resolve(routine.owners, today)]


def _when(start: dt.datetime, end: dt.datetime) -> str:
    local_start, local_end = start.astimezone(STOCKHOLM), end.astimezone(STOCKHOLM)
    return f"{local_start:%Y-%m-%d} kl. {local_start:%H.%M}–{local_end:%H.%M}"


def _place_name(places: Mapping[str, Any], key: str | None) -> str | None:
    place = places.get(key) if key is not None else None
    if isinstance(place, Mapping):
        return str(place.get("name") or key)
    return key


def _audit_case(
    session: Session,
    viewer: Viewer,
    reference: str,
    action: str,
    detail: dict[str, object],
    now: dt.datetime,
) -> None:
    session.add(
        models.CaseAudit(
            municipality_id=viewer.municipality_id,
            series=CASE_SERIES,
            reference=reference,
            at=now,
            actor_id=viewer.person_id,
            actor=viewer.person_key,
            action=action,
            detail=detail,
        )
    )
