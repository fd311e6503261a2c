"""Routine rules → occurrences → messages with their due times. Pure: no database, no clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from scheduler.calendar import STOCKHOLM, local_moment, school_year_starting
from scheduler.spec import (
    Message,
    Period,
    Routine,
    RoutineKind,
    SchoolYears,
    StandingDay,
    rrule_days_between,
)
from scheduler.workdays import (
    Direction,
    add_working_days,
    adjust,
    is_working_day,
    period_end,
    working_day_after,
    working_day_before,
)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class BookingInfo:
    """A meeting's date and time; `booked_at` is when it was booked (None: known in advance)."""

    start: dt.datetime  # aware, UTC
    end: dt.datetime
    location: str | None  # the key of one of the profile's places
    sequence: int = 0
    booked_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None  # called off: only its CANCELs are planned


@dataclass(frozen=True)
class Occurrence:
    routine: str
    # "2027" for a calendar-year routine, "2027/28" for a school-year routine, and for a
    # recurrence rule the rule's own day ("2027-03-09"), before any move to a working day, so
    # the key stays the same if a holiday is added.
    key: str
    date: (
        dt.date
    )  # the due date, the meeting's day (or its month's first working day), the mailout day
    kind: RoutineKind
    window_end: dt.date | None = None  # meetings: the last working day of their month
    booking: BookingInfo | None = None


@dataclass(frozen=True)
class MessageTiming:
    """When one message of an occurrence is due (a local date and an aware UTC moment)."""

    message: Message
    occurrence: Occurrence
    due_date: dt.date
    due_at: dt.datetime
    extra: dict[str, str] = field(default_factory=dict)


def direction_of(routine: Routine) -> Direction:
    if routine.when.adjust is not None:
        return Direction(routine.when.adjust)
    return Direction.DEADLINE if routine.kind is RoutineKind.DEADLINE else Direction.WAITING


def occurrences(
    routine: Routine,
    school_years: SchoolYears,
    years: Iterable[int],
    bookings: dict[str, BookingInfo] | None = None,
) -> list[Occurrence]:
    """Occurrences of `routine` whose year (calendar year, or school year's first) is in `years`."""
    bookings = bookings or {}
    found: list[Occurrence] = []
    for year in years:
        if routine.active.first is not None and year < routine.active.first:
            continue
        if routine.active.last is not None and year > routine.active.last:
            continue
        if routine.when.rrule is not None:
            found += _recurring_in(routine, year, bookings)
            continue
        occurrence = _occurrence_in(routine, school_years, year, bookings)
        if occurrence is not None:
            found.append(occurrence)
    return found


@lru_cache(maxsize=1024)
def rule_days(text: str, starts: dt.date | None, year: int) -> tuple[dt.date, ...]:
    """The days in calendar `year` that the RRULE `text` gives, counted from `starts`.

    The rule has no time parts (the schema refuses them), so every instance is at midnight."""
    return tuple(rrule_days_between(text, starts, dt.date(year, 1, 1)))


def _recurring_in(
    routine: Routine, year: int, bookings: dict[str, BookingInfo]
) -> list[Occurrence]:
    """One occurrence per day of the rule, moved to a working day as the routine's kind says."""
    when = routine.when
    assert when.rrule is not None
    direction = direction_of(routine)
    found: list[Occurrence] = []
    for day in rule_days(when.rrule, when.starts, year):
        key = day.isoformat()
        moved = adjust(day, direction)
        booking = bookings.get(key) or _standing_on(routine, moved)
        date = booking.start.astimezone(STOCKHOLM).date() if booking else moved
        found.append(Occurrence(routine.key, key, date, routine.kind, None, booking))
    return found


def _occurrence_in(
    routine: Routine, school_years: SchoolYears, year: int, bookings: dict[str, BookingInfo]
) -> Occurrence | None:
    when = routine.when
    direction = direction_of(routine)
    if when.date is not None:
        day = when.date.in_year(year)
        if day is None:
            return None
        return Occurrence(routine.key, str(year), adjust(day, direction), routine.kind)
    if when.month is not None:
        return _meeting_month(routine, year, when.month, bookings.get(str(year)))
    school_year = school_year_starting(school_years, year)
    offset = when.offset
    if when.school_year == "start":
        day = _shift(school_year.start, offset, +1, direction)
    else:
        day = _shift(school_year.end, offset, -1, direction)
    return Occurrence(routine.key, school_year.label, day, routine.kind)


def _shift(day: dt.date, offset: Period | None, sign: int, direction: Direction) -> dt.date:
    if offset is None:
        return adjust(day, direction)
    if offset.unit == "working_days":
        return add_working_days(day, sign * offset.length)
    return period_end(day, sign * offset.length, offset.unit, direction)


def _meeting_month(
    routine: Routine, year: int, month: int, booking: BookingInfo | None
) -> Occurrence:
    first = working_day_after(dt.date(year, month, 1))
    last_day = (dt.date(year + (month == 12), month % 12 + 1, 1)) - dt.timedelta(days=1)
    window_end = working_day_before(last_day)
    if booking is None:
        booking = _standing_booking(routine, year, month)
    day = booking.start.astimezone(STOCKHOLM).date() if booking else first
    return Occurrence(routine.key, str(year), day, routine.kind, window_end, booking)


def _standing_booking(routine: Routine, year: int, month: int) -> BookingInfo | None:
    meeting = routine.meeting
    if meeting is None or meeting.standing_day is None or meeting.time is None:
        return None
    return _standing_on(routine, nth_weekday(year, month, meeting.standing_day))


def _standing_on(routine: Routine, day: dt.date) -> BookingInfo | None:
    """A meeting held at its standing time on `day`, known in advance (no booking needed)."""
    meeting = routine.meeting
    if meeting is None or meeting.time is None:
        return None
    start = local_moment(day, meeting.time)
    end = start + dt.timedelta(minutes=meeting.duration_minutes)
    return BookingInfo(start=start, end=end, location=meeting.place)


def nth_weekday(year: int, month: int, rule: StandingDay) -> dt.date:
    """The `rule.nth` `rule.weekday` of the month, moved to the next working day if need be."""
    wanted = _WEEKDAYS.index(rule.weekday)
    day = dt.date(year, month, 1)
    day += dt.timedelta(days=(wanted - day.weekday()) % 7)
    day += dt.timedelta(weeks=rule.nth - 1)
    return working_day_after(day) if not is_working_day(day) else day


def message_timings(
    routine: Routine, occurrence: Occurrence, send_time: dt.time
) -> list[MessageTiming]:
    """When each message of `occurrence` is due. Booking messages wait for a booking."""
    timings: list[MessageTiming] = []
    for message in routine.messages:
        if message.on == "booking":
            timing = _booking_timing(message, occurrence, send_time)
            if timing is not None:
                timings.append(timing)
            continue
        if message.until_booked and occurrence.booking is not None:
            continue  # nothing stale: a booked meeting needs no reminder to book it
        anchor = occurrence.window_end if message.on == "window_end" else occurrence.date
        if anchor is None:
            continue
        day = _offset_day(anchor, message)
        if message.repeat is None:
            timings.append(MessageTiming(message, occurrence, day, local_moment(day, send_time)))
            continue
        for round_day in repeat_days(day, message.repeat, occurrence.window_end or anchor):
            moment = local_moment(round_day, send_time)
            extra = {"round": round_day.isoformat()}
            timings.append(MessageTiming(message, occurrence, round_day, moment, extra))
    return timings


def repeat_days(first: dt.date, every: Period, last: dt.date) -> list[dt.date]:
    """`first`, then every `every` after it, each on a working day, up to and including `last`.

    Rounds are counted on the unmoved days, so a holiday does not shift the rest of the series.
    """
    days: list[dt.date] = []
    raw = first
    while raw <= last:
        day = working_day_after(raw)
        if day <= last and (not days or day > days[-1]):
            days.append(day)
        if every.unit == "working_days":
            raw = add_working_days(raw, every.length)
        else:
            raw += dt.timedelta(days=every.length * (7 if every.unit == "weeks" else 1))
    return days


def _offset_day(anchor: dt.date, message: Message) -> dt.date:
    if message.before is not None:
        return _shift(anchor, message.before, -1, Direction.DEADLINE)
    if message.after is not None:
        return _shift(anchor, message.after, +1, Direction.WAITING)
    return anchor


def _booking_timing(
    message: Message, occurrence: Occurrence, send_time: dt.time
) -> MessageTiming | None:
    booking = occurrence.booking
    if booking is None:
        return None
    meeting_day = booking.start.astimezone(STOCKHOLM).date()
    day = _offset_day(meeting_day, message)
    due_at = local_moment(day, send_time)
    # Booked later than the usual notice, or changed (calendars may hold the old one already):
    # the invite goes out at once.
    if booking.booked_at is not None and (booking.booked_at > due_at or booking.sequence > 0):
        if booking.booked_at >= booking.start:
            # Booked or changed once the meeting had begun (a profile keeps last year's
            # bookings as a record): there is nothing to invite anyone to.
            return None
        due_at = booking.booked_at
        day = booking.booked_at.astimezone(STOCKHOLM).date()
    return MessageTiming(message, occurrence, day, due_at, {"sequence": str(booking.sequence)})
