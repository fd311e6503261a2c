"""Working days in Sweden, from the `holidays` package (public + de facto holidays).

Never a hand-written holiday list: midsommarafton, julafton and nyårsafton come from the
package's `de_facto` category, the rest from `public`.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

import holidays

CATEGORIES = ("public", "de_facto")


class Direction(StrEnum):
    """Which way a date that falls on a non-working day moves.

    A deadline ("by 30 June", "within two weeks") moves back to the previous working day, so
    the work is done in time; a waiting period ("contact them after two weeks") moves forward
    to the next working day, so the wait is at least as long as promised.
    """

    DEADLINE = "deadline"
    WAITING = "waiting"


@lru_cache(maxsize=64)
def _holidays_for(year: int) -> dict[date, str]:
    found = holidays.country_holidays("SE", years=year, categories=CATEGORIES, language="sv")
    return dict(found.items())


def holiday_name(day: date) -> str | None:
    """The Swedish name of the holiday on `day`, or None."""
    return _holidays_for(day.year).get(day)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays_for(day.year)


def working_day_before(day: date) -> date:
    """The last working day on or before `day`."""
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


def working_day_after(day: date) -> date:
    """The first working day on or after `day`."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def adjust(day: date, direction: Direction) -> date:
    """Move `day` to a working day in the direction its kind of date requires."""
    if direction is Direction.DEADLINE:
        return working_day_before(day)
    return working_day_after(day)


def add_working_days(day: date, count: int) -> date:
    """`count` working days after `day` (before, for a negative count); `day` not counted."""
    step = timedelta(days=1 if count >= 0 else -1)
    remaining = abs(count)
    while remaining:
        day += step
        if is_working_day(day):
            remaining -= 1
    return day


def period_end(start: date, length: int, unit: str, direction: Direction) -> date:
    """The end of a period of `length` calendar days, weeks or working days from `start`.

    Calendar periods that end on a non-working day move as `direction` says; a period counted
    in working days always ends on one.
    """
    if unit == "working_days":
        return add_working_days(start, length)
    days = length * 7 if unit == "weeks" else length
    if unit not in ("days", "weeks"):
        raise ValueError(f"unknown period unit {unit!r}: use days, weeks or working_days")
    return adjust(start + timedelta(days=days), direction)
