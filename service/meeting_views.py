"""The meetings page: the booked meetings a `Viewer` may see, one meeting's invitees and their
answers, and moving or calling off a routine meeting.

Every function starts from the viewer's municipality, so nobody sees another municipality's
meetings. Routine meetings: a coordinator sees all of them; others those they convene (hold
one of the routine's owner roles) or were invited to (a message of that meeting addressed to
them, or a row of `invite_record`). Case meetings: only for those entitled to the case
(`service.todo_view.case_visible`), named by the neutral case reference only; every listing and
every view of one is written to the case's audit (`case_audit`).

Who was invited comes from the record of who was sent what (`invite_record`), not from who
holds the roles today; an external participant of a case meeting is shown by role
("Vårdnadshavare", "Elev"), never by address. Moving and calling off go through the same
service functions as `samverkan book` and `samverkan meeting cancel` (a REQUEST with a higher
SEQUENCE, or a CANCEL, through the outbox); only the routine's convener or a coordinator may,
checked here, and each is written to `web_audit`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import models
from core.dates import parse_day
from scheduler.bookings import BookingProblem, check_booking
from scheduler.bookings import Rule as BookingRule
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.directory import load_directory
from scheduler.identity import event_uid, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import Routine
from service.booking import book_routine_meeting
from service.meetings import call_off_allowed
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


class MeetingNotFound(Exception):
    """No such meeting in the viewer's municipality, or not one the viewer may see."""


class MeetingForbidden(Exception):
    """The viewer may see the meeting but not change it."""


class MeetingInputError(Exception):
    """What was asked for breaks a rule: per form field, a Swedish message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


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
    invited = _invited_to(session, viewer)
    b, r = models.Booking, models.Routine
    rows = session.execute(
        select(b, r)
        .join(r, r.id == b.routine_id)
        .where(r.municipality_id == viewer.municipality_id, r.active.is_(True))
        .where(b.starts_at >= since)
    )
    for booking, routine_row in rows:
        mine = viewer.is_coordinator or (routine_row.key, booking.occurrence) in invited
        if not mine and not _convenes(session, viewer, _routine(routine_row), local_date(now)):
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


def _invited_to(session: Session, viewer: Viewer) -> set[tuple[str, str]]:
    """(routine key, occurrence) of every meeting a message was planned or sent to the viewer
    (also one cancelled since: someone told of a meeting still sees that it was called off)."""
    me = viewer.email.strip().lower()
    n, i = models.Notification, models.InviteRecord
    planned = session.execute(
        select(n.routine_key, n.occurrence)
        .where(n.municipality_id == viewer.municipality_id)
        .where(or_(n.person_id == viewer.person_id, func.lower(n.recipient_email) == me))
        .distinct()
    )
    recorded = session.execute(
        select(i.routine_key, i.occurrence)
        .where(i.municipality_id == viewer.municipality_id)
        .where(or_(i.person_id == viewer.person_id, i.recipient_email == me))
        .distinct()
    )
    return {(k, o) for k, o in planned} | {(k, o) for k, o in recorded}


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
    """A booked routine meeting, its invitees and their answers; MeetingNotFound when the
    viewer may not see it."""
    municipality, routine_row, booking = _booked(session, viewer, routine_key, occurrence)
    routine = _routine(routine_row)
    convenes = _convenes(session, viewer, routine, local_date(now))
    invited = (routine_key, occurrence) in _invited_to(session, viewer)
    if not (viewer.is_coordinator or convenes or invited):
        raise MeetingNotFound(routine_key)
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
        may_change=(viewer.is_coordinator or convenes) and not cancelled and start > now,
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
        raise MeetingNotFound(reference)
    meeting = next((m for m in case.meetings if m.number == number), None)
    if meeting is None:
        raise MeetingNotFound(reference)
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


# --- moving and calling off ----------------------------------------------------------------------


def move_meeting(
    session: Session,
    viewer: Viewer,
    routine_key: str,
    occurrence: str,
    date_text: str,
    time_text: str,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    """Move a booked routine meeting to another day or time, as `samverkan book` does (the
    invitations go out again with a higher SEQUENCE). The convener or a coordinator only."""
    municipality, routine_row, booking = _changeable(session, viewer, routine_key, occurrence, now)
    routine = _routine(routine_row)
    errors: dict[str, str] = {}
    day = parse_day(date_text.strip())
    if day is None:
        errors["datum"] = "Skriv datumet som ÅÅÅÅ-MM-DD, till exempel 2027-04-13."
    at = _time(time_text.strip())
    if at is None:
        errors["tid"] = "Skriv tiden som TT:MM, till exempel 13:00."
    if day is not None and at is not None:
        year = int(occurrence) if occurrence.isdigit() else day.year
        if day.year != year:
            errors["datum"] = f"Mötet för {year} ska hållas under {year}."
        check = check_booking(routine, day, at, occurrence_year=year, now=now)
        for problem in check.problems:
            errors.setdefault(_field(problem), _swedish(problem, day, at))
    if errors:
        raise MeetingInputError(errors)
    assert day is not None and at is not None
    outcome = book_routine_meeting(
        session,
        municipality.id,
        routine_key,
        day.isoformat(),
        at.strftime("%H:%M"),
        booking.location,
        now,
        horizon_days,
    )
    _audit(session, viewer, "meeting.move", routine_key, occurrence, booking.sequence, now)
    return outcome


def call_off(
    session: Session,
    viewer: Viewer,
    routine_key: str,
    occurrence: str,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    """Call off a booked routine meeting, as `samverkan meeting cancel` does (a CANCEL to
    everyone whose calendar holds it). The convener or a coordinator only."""
    municipality, routine_row, booking = _changeable(session, viewer, routine_key, occurrence, now)
    outcome = call_off_allowed(
        session,
        municipality.id,
        routine_row,
        _routine(routine_row),
        local_date(booking.starts_at),
        now,
        horizon_days,
    )
    _audit(session, viewer, "meeting.cancel", routine_key, occurrence, booking.sequence, now)
    return outcome


def may_change(session: Session, viewer: Viewer, routine: Routine, today: dt.date) -> bool:
    """Moving or calling off a routine meeting: its convener, or a coordinator."""
    return viewer.is_coordinator or _convenes(session, viewer, routine, today)


def _changeable(
    session: Session, viewer: Viewer, routine_key: str, occurrence: str, now: dt.datetime
) -> tuple[models.Municipality, models.Routine, models.Booking]:
    municipality, routine_row, booking = _booked(session, viewer, routine_key, occurrence)
    routine = _routine(routine_row)
    if not may_change(session, viewer, routine, local_date(now)):
        if (routine_key, occurrence) not in _invited_to(session, viewer):
            raise MeetingNotFound(routine_key)
        raise MeetingForbidden(routine_key)
    if booking.cancelled_at is not None:
        raise MeetingInputError({"mote": "Mötet är redan inställt."})
    if booking.starts_at <= now:
        raise MeetingInputError({"mote": "Mötet har redan börjat eller hållits."})
    return municipality, routine_row, booking


# --- helpers -------------------------------------------------------------------------------------


def _booked(
    session: Session, viewer: Viewer, routine_key: str, occurrence: str
) -> tuple[models.Municipality, models.Routine, models.Booking]:
    routine_row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == viewer.municipality_id,
            models.Routine.key == routine_key,
        )
    )
    if routine_row is None or not routine_row.active:
        raise MeetingNotFound(routine_key)
    booking = session.scalar(
        select(models.Booking).where(
            models.Booking.routine_id == routine_row.id, models.Booking.occurrence == occurrence
        )
    )
    if booking is None:
        raise MeetingNotFound(routine_key)
    return session.get_one(models.Municipality, viewer.municipality_id), routine_row, booking


def _routine(row: models.Routine) -> Routine:
    spec = dict(row.spec)
    spec.pop("attachment_files", None)
    return Routine.model_validate(spec)


def _convenes(session: Session, viewer: Viewer, routine: Routine, today: dt.date) -> bool:
    """Holds one of the routine's owner roles today."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    directory = load_directory(
        session,
        viewer.municipality_id,
        dict(MunicipalitySettings.of(municipality).role_names),
        person_id=viewer.person_id,
    )
    return bool(directory.resolve(routine.owners, today))


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


def _time(text: str) -> dt.time | None:
    if len(text) != 5 or text[2] != ":":
        return None
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        return None


def _field(problem: BookingProblem) -> str:
    return {"date": "datum", "time": "tid"}.get(problem.field, "mote")


def _swedish(problem: BookingProblem, day: dt.date, at: dt.time) -> str:
    """The booking rule broken, in Swedish (a date and a clock time are not personal)."""
    texts = {
        BookingRule.MEETING: "Det här mötet bokas inte om här: ändra rutinen i profilen.",
        BookingRule.MONTH: f"{day} ligger utanför den månad mötet ska hållas.",
        BookingRule.WORKING_DAY: f"{day} är inte en arbetsdag.",
        BookingRule.LOCAL_TIME: f"Klockan {at:%H:%M} finns inte den {day} (sommartid börjar).",
        BookingRule.NO_OFFSET: "Ange svensk lokal tid utan tidszon.",
        BookingRule.NOT_BEGUN: f"{day} kl. {at:%H:%M} har redan varit.",
    }
    return texts.get(problem.rule, "Tiden går inte att boka.")


def _audit(
    session: Session,
    viewer: Viewer,
    action: str,
    routine_key: str,
    occurrence: str,
    sequence: int,
    now: dt.datetime,
) -> None:
    session.add(
        models.WebAudit(
            municipality_id=viewer.municipality_id,
            at=now,
            actor_id=viewer.person_id,
            action=action,
            detail={"routine": routine_key, "occurrence": occurrence, "sequence": sequence},
        )
    )


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
