"""Booking a meeting occurrence by command: validate, record (SEQUENCE rises), re-plan."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from samverkan.errors import NotFoundError, SamverkanError
from samverkan.profiles import upsert_booking
from scheduler.calendar import STOCKHOLM
from scheduler.planner import replan
from scheduler.spec import Routine, RoutineKind, Text
from scheduler.workdays import holiday_name, is_working_day


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
    if routine.kind is not RoutineKind.MEETING or routine.meeting is None:
        raise BookingError(
            f"{routine_key!r} is a {routine.kind.value}, not a meeting: nothing to book"
        )
    day, start_time = _parse(date_text, time_text)
    if routine.when.month is not None and day.month != routine.when.month:
        raise BookingError(
            f"{routine_key!r} is held in month {routine.when.month}; {day} is not in it"
        )
    if not is_working_day(day):
        reason = holiday_name(day) or day.strftime("%A")
        raise BookingError(f"{day} is not a working day ({reason})")
    if location is not None:
        from pydantic import TypeAdapter, ValidationError

        try:
            TypeAdapter(Text).validate_python(location)
        except ValidationError:
            raise BookingError("the location must be one line of at most 200 characters") from None
    start = dt.datetime.combine(day, start_time, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    if start <= now:
        raise BookingError(f"{day} {time_text} has already passed")
    values = {
        "starts_at": start,
        "ends_at": start + dt.timedelta(minutes=routine.meeting.duration_minutes),
        "location": location or routine.meeting.location,
    }
    changed = upsert_booking(session, row, str(day.year), values, now, source="command")
    session.flush()
    result = replan(session, municipality_id, now, horizon_days, routines=[routine_key])
    if not changed:
        return f"{routine_key} {day.year}: already booked for {day} {time_text}; nothing changed"
    return (
        f"{routine_key} {day.year}: booked {day} {time_text}; {result.created} invite(s) planned, "
        f"{result.cancelled} earlier message(s) cancelled"
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
