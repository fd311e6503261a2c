"""Booking a meeting occurrence by command: validate, record (SEQUENCE rises), re-plan."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from samverkan.errors import NotFoundError, SamverkanError
from samverkan.profiles import upsert_booking
from scheduler.bookings import check_booking
from scheduler.planner import replan
from scheduler.spec import Routine, Text


class BookingError(SamverkanError):
    """The meeting cannot be booked like that."""


def book_meeting(
    session: Session,
    municipality_id: int,
    routine_key: str,
    date_text: str,
    time_text: str,
    location: str | None,
    now: dt.datetime,
    horizon_days: int,
) -> str:
    row = session.scalar(
        select(models.Routine).where(
            models.Routine.municipality_id == municipality_id, models.Routine.key == routine_key
        )
    )
    if row is None or not row.active:
        raise NotFoundError(f"no routine {routine_key!r} in this municipality")
    spec = dict(row.spec)
    spec.pop("attachment_files", None)
    routine = Routine.model_validate(spec)
    day, start_time = _parse(date_text, time_text)
    check = check_booking(routine, day, start_time, now=now)
    if check.start is None or check.end is None:
        raise BookingError("; ".join(problem.message for problem in check.problems))
    if location is not None:
        from pydantic import TypeAdapter, ValidationError

        try:
            TypeAdapter(Text).validate_python(location)
        except ValidationError:
            raise BookingError("the location must be one line of at most 200 characters") from None
    assert routine.meeting is not None  # check_booking refuses anything but a meeting
    values = {
        "starts_at": check.start,
        "ends_at": check.end,
        "location": location or routine.meeting.location,
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
    try:
        day = dt.date.fromisoformat(date_text)
    except ValueError:
        raise BookingError(f"{date_text!r} is not a date (YYYY-MM-DD)") from None
    try:
        start_time = dt.time.fromisoformat(time_text)
    except ValueError:
        raise BookingError(f"{time_text!r} is not a time (HH:MM)") from None
    return day, start_time
