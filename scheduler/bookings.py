"""One check for the booking of a routine meeting, whatever the route (command or profile).

Pure: the routine, the local date and time asked for, and (for a command) the moment now.
Every rule that refuses names itself; a value a person typed is never echoed (a date and a
clock time are not personal, so they are named).

Local time rules (Europe/Stockholm), stated once here:

- a time that does not exist (the hour skipped when summer time begins, 02:00-02:59 on the
  last Sunday of March) is refused;
- a time that exists twice (the hour repeated when summer time ends, 02:00-02:59 on the last
  Sunday of October) means the first of the two, still summer time (zoneinfo's fold=0);
- a meeting lasts its duration in elapsed time, so its end is the start plus the duration,
  whatever the clocks do meanwhile (an end in the repeated hour may be its second pass).
"""

from __future__ import annotations

import datetime as dt
from calendar import month_name
from dataclasses import dataclass
from enum import StrEnum

from core.errors import NonexistentLocalTime as NonexistentLocalTime  # re-exported
from scheduler.calendar import STOCKHOLM
from scheduler.spec import Routine, RoutineKind
from scheduler.workdays import holiday_name, is_working_day


class Rule(StrEnum):
    """The rules a booking must keep (tests check each refusal against them)."""

    MEETING = "meeting"  # the routine is a meeting
    MONTH = "month"  # in the routine's month, of the year booked for
    WORKING_DAY = "working_day"
    LOCAL_TIME = "local_time"  # the wall-clock time exists (not in the spring-forward gap)
    NO_OFFSET = "no_offset"  # a local time, not one with a UTC offset
    NOT_BEGUN = "not_begun"  # a command cannot book a meeting that has begun


@dataclass(frozen=True)
class BookingProblem:
    """A broken rule; `field` is the part of the booking it concerns: routine, date or time."""

    rule: Rule
    field: str
    message: str


@dataclass(frozen=True)
class BookingCheck:
    """The outcome: the meeting's start and end (aware, UTC) if no rule was broken."""

    problems: tuple[BookingProblem, ...]
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def local_start(day: dt.date, at: dt.time) -> dt.datetime:
    """`day` at wall-clock `at` in Stockholm as aware UTC; the repeated hour means its first pass.

    Raises NonexistentLocalTime for a time in the skipped hour, instead of zoneinfo's silent
    reading of it with the offset before the jump (02:30 would become 03:30 summer time).
    """
    wall = dt.datetime.combine(day, at.replace(tzinfo=None, fold=0))
    moment = wall.replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)
    if moment.astimezone(STOCKHOLM).replace(tzinfo=None) != wall:
        raise NonexistentLocalTime(
            f"{day} {at:%H:%M} does not exist in Stockholm time: the clocks go forward from "
            "02:00 to 03:00 that night (summer time begins); choose another time"
        )
    return moment


def check_booking(
    routine: Routine,
    day: dt.date,
    at: dt.time,
    *,
    occurrence_year: int | None = None,
    now: dt.datetime | None = None,
) -> BookingCheck:
    """Check a booking of `routine`'s meeting on `day` at local time `at`.

    `occurrence_year`: the year the booking is for (a profile's `bookings:` key); by default
    the date's own year. `now`: a meeting that has begun by then is refused (the command);
    None leaves the past alone (a profile keeps earlier years' bookings as a record; the
    planner sends no invitation for a meeting that had begun when it was booked).
    """
    if routine.kind is not RoutineKind.MEETING or routine.meeting is None:
        message = f"{routine.key!r} is a {routine.kind.value}, not a meeting: nothing to book"
        return BookingCheck((BookingProblem(Rule.MEETING, "routine", message),))
    if routine.when.rrule is not None:
        # Each day of the rule is held at the standing time: nothing is booked year by year.
        message = (
            f"{routine.key!r} recurs by its rule and is held at its standing time: "
            "change meeting.time or the rule in the profile"
        )
        return BookingCheck((BookingProblem(Rule.MEETING, "routine", message),))
    problems = _date_problems(routine, day, occurrence_year or day.year)
    start = _start(day, at, problems)
    if start is not None and now is not None and start <= now:
        problems.append(
            BookingProblem(Rule.NOT_BEGUN, "time", f"{day} {at:%H:%M} has already passed")
        )
    if problems or start is None:
        return BookingCheck(tuple(problems))
    end = start + dt.timedelta(minutes=routine.meeting.duration_minutes)
    return BookingCheck((), start, end)


def _start(day: dt.date, at: dt.time, problems: list[BookingProblem]) -> dt.datetime | None:
    if at.tzinfo is not None:
        problems.append(
            BookingProblem(Rule.NO_OFFSET, "time", "give the local time without a UTC offset")
        )
        return None
    try:
        return local_start(day, at)
    except NonexistentLocalTime as exc:
        problems.append(BookingProblem(Rule.LOCAL_TIME, "time", str(exc)))
        return None


def _date_problems(routine: Routine, day: dt.date, year: int) -> list[BookingProblem]:
    problems = []
    month = routine.when.month
    if month is not None and (day.year, day.month) != (year, month):
        problems.append(
            BookingProblem(
                Rule.MONTH,
                "date",
                f"{routine.key!r} is held in {month_name[month]}; the {year} meeting must be "
                f"in {month_name[month]} {year}, and {day} is not",
            )
        )
    if not is_working_day(day):
        reason = holiday_name(day) or day.strftime("%A")
        problems.append(
            BookingProblem(Rule.WORKING_DAY, "date", f"{day} is not a working day ({reason})")
        )
    return problems
