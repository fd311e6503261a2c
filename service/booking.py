"""Booking a meeting occurrence by command: validate, record (SEQUENCE rises), re-plan."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.dates import DAY_RULE, parse_day
from core.errors import BookingError as BookingError  # re-exported
from core.errors import NotFoundError
from scheduler.bookings import check_booking
from scheduler.municipality import MunicipalitySettings
from scheduler.places import unknown_place
from scheduler.planner import replan
from scheduler.spec import Routine
from service.profiles import upsert_booking

PLACE_RULE = (
    "--place: no place with that key; a meeting's place is one of the keys under 'places' in "
    "the profile (free text is not accepted, so nothing typed here can reach an invite)"
)


def book_meeting(
    session: Session,
    municipality_id: int,
    routine_key: str,
    date_text: str,
    time_text: str,
    place: str | None,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == municipality_id, models.Routine.key == routine_key
        )
    )
    if row is None or not row.active:
        raise NotFoundError("ROUTINE: no routine with that key in this municipality")
    spec = dict(row.spec)
    spec.pop("attachment_files", None)
    routine = Routine.model_validate(spec)
    day, start_time = _parse(date_text, time_text)
    check = check_booking(routine, day, start_time, now=now)
    if check.start is None or check.end is None:
        raise BookingError("; ".join(problem.message for problem in check.problems))
    municipality = session.get_one(models.Municipality, municipality_id)
    if unknown_place(MunicipalitySettings.of(municipality).places, place):
        raise BookingError(PLACE_RULE)
    assert routine.meeting is not None  # check_booking refuses anything but a meeting
    values = {
        "starts_at": check.start,
        "ends_at": check.end,
        "location": place or routine.meeting.place,  # a place key
    }
    changed = upsert_booking(session, row, str(day.year), values, now, source="command")
    session.flush()
    # The whole municipality is re-planned, as at load: the outbox keeps equal to the plan.
    done = replan(session, municipality_id, now, horizon_days).of(routine_key)
    if not changed:
        return f"{routine_key} {day.year}: already booked for {day} {time_text}; nothing changed"
    planned = done["created"] + done["revived"]
    return (
        f"{routine_key} {day.year}: booked {day} {time_text}; {planned} invite(s) planned, "
        f"{done['cancelled']} earlier message(s) cancelled"
    )


def _parse(date_text: str, time_text: str) -> tuple[dt.date, dt.time]:
    day = parse_day(date_text)  # within the planned years: horizons are added to it
    if day is None:
        raise BookingError(f"DATE: give {DAY_RULE}")
    try:
        start_time = dt.time.fromisoformat(time_text)
    except ValueError:
        raise BookingError("TIME: not a time; write HH:MM") from None
    return day, start_time
