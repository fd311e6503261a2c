"""Calling off a routine meeting: record it, cancel what was still to be sent, re-plan (which
plans a CANCEL to everyone whose calendar holds the meeting).

By command (`cancel_meeting`: the convener named by `--by`), or from the web app
(`call_off_meeting`, and `move_meeting` and `book_on_page` through `service.booking`): there
the signed-in `Viewer` must be the routine's convener or a coordinator (`may_change`,
`may_book`), and the change is written to `web_audit`. `to_book` lists the meetings still to
be booked. `invited_to` and `convenes` also decide who sees a meeting
(`service.meeting_views`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import models
from core.dates import DAY_RULE, parse_day
from core.errors import MeetingError, NotFoundError
from scheduler import outbox
from scheduler.bookings import BookingProblem, check_booking
from scheduler.bookings import Rule as BookingRule
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.directory import load_directory
from scheduler.municipality import MunicipalitySettings
from scheduler.occurrences import BookingInfo, Occurrence, occurrences
from scheduler.places import unknown_place
from scheduler.planner import planning_input, replan
from scheduler.spec import Routine
from service.booking import book_routine_meeting
from service.profilesync import call_off
from service.viewer import Viewer

log = logging.getLogger("samverkan.meetings")

CALLED_OFF = "the meeting was called off"


def cancel_meeting(
    session: Session,
    municipality_id: int,
    routine_key: str,
    date_text: str,
    by: str,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    routine_row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == municipality_id, models.Routine.key == routine_key
        )
    )
    if routine_row is None or not routine_row.active:
        raise NotFoundError("ROUTINE: no routine with that key in this municipality")
    spec = dict(routine_row.spec)
    spec.pop("attachment_files", None)
    routine = Routine.model_validate(spec)
    if routine.meeting is None:
        raise MeetingError("ROUTINE: not a meeting routine")
    day = parse_day(date_text)
    if day is None:
        raise MeetingError(f"DATE: give {DAY_RULE}")
    _check_convener(session, municipality_id, routine, by, now)
    return call_off_allowed(session, municipality_id, routine_row, routine, day, now, horizon_days)


def call_off_allowed(
    session: Session,
    municipality_id: int,
    routine_row: models.Routine,
    routine: Routine,
    day: dt.date,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    """Call off the meeting of `routine` held on `day`, once the caller has checked who is
    asking (the command: a convener; the web app: a convener or a coordinator)."""
    routine_key = routine.key
    occurrence, info = _find(session, municipality_id, routine, day)
    if info.start <= now:
        raise MeetingError("DATE: that meeting has already begun or passed")
    booking = session.scalar(
        select(models.Booking).where(
            models.Booking.routine_id == routine_row.id, models.Booking.occurrence == occurrence
        )
    )
    if booking is None:  # a meeting at its standing time: recorded now, to be called off
        booking = models.Booking(
            routine_id=routine_row.id,
            occurrence=occurrence,
            starts_at=info.start,
            ends_at=info.end,
            location=info.location,
            sequence=info.sequence,
            booked_at=now,
            source="command",
        )
        session.add(booking)
    if not call_off(booking, now):
        return f"{routine_key} {day}: already called off; nothing changed"
    booking.source = "command"  # a later profile load does not book it again
    waiting = 0
    n = models.Notification
    for row in session.scalars(
        select(n).where(
            n.municipality_id == municipality_id,
            n.routine_key == routine_key,
            n.occurrence == occurrence,
            n.status == models.Status.PENDING,
        )
    ):
        outbox.cancel(row, now, CALLED_OFF)
        waiting += 1
    session.flush()
    done = replan(session, municipality_id, now, horizon_days).of(routine_key)
    log.info("meeting called off", extra={"action": "meeting.cancel", "routine": routine_key})
    return (
        f"{routine_key} {day}: called off; {done['created'] + done['revived']} cancellation(s) "
        f"planned, {waiting} message(s) still to be sent cancelled"
    )


def _check_convener(
    session: Session, municipality_id: int, routine: Routine, by: str, now: dt.datetime
) -> None:
    person = session.scalar(
        select(models.Person).where(
            models.Person.municipality_id == municipality_id, models.Person.key == by
        )
    )
    if person is None or not person.active:
        raise NotFoundError("--by: no person with that key in this municipality")
    municipality = session.get_one(models.Municipality, municipality_id)
    directory = load_directory(
        session,
        municipality_id,
        dict(MunicipalitySettings.of(municipality).role_names),
        person_id=person.id,
    )
    if not directory.resolve(routine.owners, local_date(now)):
        raise MeetingError("--by: only one of the routine's owners can call its meeting off")


def _find(
    session: Session, municipality_id: int, routine: Routine, day: dt.date
) -> tuple[str, BookingInfo]:
    data = planning_input(session, municipality_id)
    bookings = {occ: b for (key, occ), b in data.bookings.items() if key == routine.key}
    for occurrence in occurrences(
        routine, data.municipality.school_years, range(day.year - 1, day.year + 1), bookings
    ):
        booking = occurrence.booking
        if booking is not None and booking.start.astimezone(STOCKHOLM).date() == day:
            return occurrence.key, booking
    raise MeetingError("DATE: no booked meeting of that routine on that day")


# --- the web app: who may see and change a routine meeting ----------------------------------


class MeetingNotShown(Exception):
    """No such meeting in the viewer's municipality, or not one the viewer may see."""


class MeetingForbidden(Exception):
    """The viewer may see the meeting but not change it."""


class MeetingAlreadyBooked(Exception):
    """The meeting is booked already: it is moved, not booked again."""


class MeetingInputError(Exception):
    """What was asked for breaks a rule: per form field, a Swedish message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def invited_to(session: Session, viewer: Viewer) -> set[tuple[str, str]]:
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
    routine = routine_spec(routine_row)
    errors, day, at = _checked(routine, occurrence, date_text, time_text, now)
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


def call_off_meeting(
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
        routine_spec(routine_row),
        local_date(booking.starts_at),
        now,
        horizon_days,
    )
    _audit(session, viewer, "meeting.cancel", routine_key, occurrence, booking.sequence, now)
    return outcome


def may_change(session: Session, viewer: Viewer, routine: Routine, today: dt.date) -> bool:
    """Moving or calling off a routine meeting: its convener, or a coordinator."""
    return viewer.is_coordinator or convenes(session, viewer, routine, today)


def may_book(session: Session, viewer: Viewer, routine: Routine, today: dt.date) -> bool:
    """Booking a routine meeting not yet booked: its convener, or a coordinator (as for
    moving it; `samverkan book` is the command's way)."""
    return viewer.is_coordinator or convenes(session, viewer, routine, today)


@dataclass(frozen=True)
class ToBook:
    """An occurrence of a convened routine meeting with no booking yet (or one called off)."""

    routine_row: models.Routine
    routine: Routine
    occurrence: Occurrence

    @property
    def cancelled(self) -> bool:
        booking = self.occurrence.booking
        return booking is not None and booking.cancelled_at is not None


def to_book(session: Session, viewer: Viewer, now: dt.datetime) -> list[ToBook]:
    """This and the next occurrence of each routine meeting the viewer may book (a coordinator:
    all of the municipality's) whose month has not ended and which has no booking yet, or
    whose booking was called off. A meeting with a standing day and time, or held by a
    recurrence rule, is never booked, so never listed."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    school_years = MunicipalitySettings.of(municipality).school_years
    today = local_date(now)
    found: list[ToBook] = []
    rows = session.scalars(
        select(models.Routine)
        .where(models.Routine.municipality_id == viewer.municipality_id)
        .where(models.Routine.active.is_(True))
        .order_by(models.Routine.key)
    )
    for row in rows:
        routine = routine_spec(row)
        if routine.meeting is None or routine.when.month is None:
            continue
        if not may_book(session, viewer, routine, today):
            continue
        bookings = {
            b.occurrence: BookingInfo(
                start=b.starts_at,
                end=b.ends_at,
                location=b.location,
                sequence=b.sequence,
                booked_at=b.booked_at,
                cancelled_at=b.cancelled_at,
            )
            for b in session.scalars(
                select(models.Booking).where(models.Booking.routine_id == row.id)
            )
        }
        coming = [
            occurrence
            for occurrence in occurrences(
                routine, school_years, range(today.year, today.year + 3), bookings
            )
            if occurrence.window_end is not None and occurrence.window_end >= today
        ][:2]
        for occurrence in coming:
            booking = occurrence.booking
            if booking is None or booking.cancelled_at is not None:
                found.append(ToBook(row, routine, occurrence))
    found.sort(key=lambda item: (item.occurrence.date, item.routine_row.name))
    return found


def book_on_page(
    session: Session,
    viewer: Viewer,
    routine_key: str,
    occurrence: str,
    date_text: str,
    time_text: str,
    place: str,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    """Book a routine meeting listed by `to_book`, as `samverkan book` does (the same checks;
    its invitations are planned at once). The convener or a coordinator only; audited."""
    row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == viewer.municipality_id,
            models.Routine.key == routine_key,
        )
    )
    if row is None or not row.active:
        raise MeetingNotShown(routine_key)
    routine = routine_spec(row)
    if not may_book(session, viewer, routine, local_date(now)):
        raise MeetingForbidden(routine_key)
    listed = {
        item.occurrence.key
        for item in to_book(session, viewer, now)
        if item.routine_row.id == row.id
    }
    if occurrence not in listed:
        booked_now = session.scalar(
            select(models.Booking).where(
                models.Booking.routine_id == row.id,
                models.Booking.occurrence == occurrence,
                models.Booking.cancelled_at.is_(None),
            )
        )
        if booked_now is not None:
            raise MeetingAlreadyBooked(routine_key)
        raise MeetingNotShown(routine_key)
    errors, day, at = _checked(routine, occurrence, date_text, time_text, now)
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    places = MunicipalitySettings.of(municipality).places
    chosen = place.strip() or None
    if unknown_place(places, chosen):
        errors["plats"] = "Välj en av platserna i listan."
    if errors:
        raise MeetingInputError(errors)
    assert day is not None and at is not None
    outcome = book_routine_meeting(
        session,
        municipality.id,
        routine_key,
        day.isoformat(),
        at.strftime("%H:%M"),
        chosen,
        now,
        horizon_days,
    )
    booking = session.scalars(
        select(models.Booking).where(
            models.Booking.routine_id == row.id, models.Booking.occurrence == occurrence
        )
    ).one()
    _audit(session, viewer, "meeting.book", routine_key, occurrence, booking.sequence, now)
    return outcome


def _changeable(
    session: Session, viewer: Viewer, routine_key: str, occurrence: str, now: dt.datetime
) -> tuple[models.Municipality, models.Routine, models.Booking]:
    municipality, routine_row, booking = booked(session, viewer, routine_key, occurrence)
    routine = routine_spec(routine_row)
    if not may_change(session, viewer, routine, local_date(now)):
        if (routine_key, occurrence) not in invited_to(session, viewer):
            raise MeetingNotShown(routine_key)
        raise MeetingForbidden(routine_key)
    if booking.cancelled_at is not None:
        raise MeetingInputError({"mote": "Mötet är redan inställt."})
    if booking.starts_at <= now:
        raise MeetingInputError({"mote": "Mötet har redan börjat eller hållits."})
    return municipality, routine_row, booking


def booked(
    session: Session, viewer: Viewer, routine_key: str, occurrence: str
) -> tuple[models.Municipality, models.Routine, models.Booking]:
    routine_row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == viewer.municipality_id,
            models.Routine.key == routine_key,
        )
    )
    if routine_row is None or not routine_row.active:
        raise MeetingNotShown(routine_key)
    booking = session.scalar(
        select(models.Booking).where(
            models.Booking.routine_id == routine_row.id, models.Booking.occurrence == occurrence
        )
    )
    if booking is None:
        raise MeetingNotShown(routine_key)
    return session.get_one(models.Municipality, viewer.municipality_id), routine_row, booking


def routine_spec(row: models.Routine) -> Routine:
    spec = dict(row.spec)
    spec.pop("attachment_files", None)
    return Routine.model_validate(spec)


def convenes(session: Session, viewer: Viewer, routine: Routine, today: dt.date) -> bool:
    """Holds one of the routine's owner roles today."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    directory = load_directory(
        session,
        viewer.municipality_id,
        dict(MunicipalitySettings.of(municipality).role_names),
        person_id=viewer.person_id,
    )
    return bool(directory.resolve(routine.owners, today))


def _checked(
    routine: Routine, occurrence: str, date_text: str, time_text: str, now: dt.datetime
) -> tuple[dict[str, str], dt.date | None, dt.time | None]:
    """The booking rules (`check_booking`) for the meeting of `occurrence` on the date and
    time typed: per form field, a Swedish message; the day and time read."""
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
    return errors, day, at


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
