"""Calling off a routine meeting by command: record it, cancel what was still to be sent,
re-plan (which plans a CANCEL to everyone whose calendar holds the meeting)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.dates import DAY_RULE, parse_day
from core.errors import NotFoundError, SamverkanError
from scheduler import outbox
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.directory import load_directory
from scheduler.municipality import MunicipalitySettings
from scheduler.occurrences import BookingInfo, occurrences
from scheduler.planner import planning_input, replan
from scheduler.spec import Routine
from service.profilesync import call_off

log = logging.getLogger("samverkan.meetings")

CALLED_OFF = "the meeting was called off"


class MeetingError(SamverkanError):
    """The meeting cannot be called off like that."""


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
