"""School years, local times and the time zone: pure functions, `now` passed in."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from scheduler.spec import SchoolYear, SchoolYears
from scheduler.workdays import working_day_after, working_day_before

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def local_moment(day: dt.date, at: dt.time, tz: ZoneInfo = STOCKHOLM) -> dt.datetime:
    """`day` at wall-clock time `at` in `tz`, as an aware UTC datetime.

    zoneinfo resolves the two ambiguous/missing hours of the DST changes with fold=0: a
    time in the skipped hour of the last Sunday of March is read as summer time's offset before
    the jump; no routine sends at 02:00-03:00 in practice.
    """
    return dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)


def local_date(moment: dt.datetime, tz: ZoneInfo = STOCKHOLM) -> dt.date:
    return moment.astimezone(tz).date()


def school_year_starting(spec: SchoolYears, year: int) -> SchoolYear:
    """The school year that starts in the autumn of `year`: listed, or made by the rule."""
    for listed in spec.years:
        if listed.start.year == year:
            return listed
    start = spec.rule.start.in_year(year) or dt.date(year, spec.rule.start.month, 28)
    end = spec.rule.end.in_year(year + 1) or dt.date(year + 1, spec.rule.end.month, 28)
    return SchoolYear(start=working_day_after(start), end=working_day_before(end))


def school_year_on(spec: SchoolYears, day: dt.date) -> SchoolYear | None:
    """The school year that `day` falls in (breaks included), or None in the summer holiday."""
    for start_year in (day.year - 1, day.year):
        year = school_year_starting(spec, start_year)
        if year.start <= day <= year.end:
            return year
    return None
