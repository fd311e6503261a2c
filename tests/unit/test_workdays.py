"""Working days, deadline vs waiting direction, and Europe/Stockholm summer time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.calendar import local_moment
from scheduler.workdays import (
    Direction,
    add_working_days,
    adjust,
    is_working_day,
    period_end,
    working_day_after,
    working_day_before,
)

D = dt.date

# One case in every month, 2026-2031: (day, a deadline moves to, a waiting period moves to).
EVERY_MONTH = [
    (D(2027, 1, 1), D(2026, 12, 30), D(2027, 1, 4)),  # nyårsdagen; nyårsafton before it
    (D(2027, 2, 14), D(2027, 2, 12), D(2027, 2, 15)),  # a Sunday
    (D(2029, 3, 30), D(2029, 3, 29), D(2029, 4, 3)),  # långfredagen, then Easter to Monday
    (D(2030, 4, 22), D(2030, 4, 18), D(2030, 4, 23)),  # annandag påsk
    (D(2031, 5, 1), D(2031, 4, 30), D(2031, 5, 2)),  # första maj, a Thursday
    (D(2029, 6, 30), D(2029, 6, 29), D(2029, 7, 2)),  # the evaluation's day, a Saturday
    (D(2028, 7, 1), D(2028, 6, 30), D(2028, 7, 3)),  # a Saturday
    (D(2026, 8, 15), D(2026, 8, 14), D(2026, 8, 17)),  # a Saturday
    (D(2030, 9, 1), D(2030, 8, 30), D(2030, 9, 2)),  # a Sunday
    (D(2026, 10, 31), D(2026, 10, 30), D(2026, 11, 2)),  # alla helgons dag
    (D(2029, 11, 3), D(2029, 11, 2), D(2029, 11, 5)),  # alla helgons dag
    (D(2027, 12, 24), D(2027, 12, 23), D(2027, 12, 27)),  # julafton (de facto holiday)
]


@pytest.mark.parametrize(("day", "deadline", "waiting"), EVERY_MONTH, ids=lambda v: str(v))
def test_non_working_day_moves_back_for_a_deadline_and_forward_for_a_wait(
    day: dt.date, deadline: dt.date, waiting: dt.date
) -> None:
    assert not is_working_day(day)
    assert adjust(day, Direction.DEADLINE) == deadline
    assert adjust(day, Direction.WAITING) == waiting


@pytest.mark.parametrize(
    "day",
    [D(2026, 6, 19), D(2027, 6, 25), D(2028, 12, 24), D(2030, 12, 31), D(2031, 6, 20)],
    ids=str,
)
def test_de_facto_holidays_are_not_working_days(day: dt.date) -> None:
    # midsommarafton, julafton, nyårsafton: from the holidays package's de_facto category
    assert not is_working_day(day)


def test_christmas_to_epiphany_2027_has_five_working_days() -> None:
    days = [D(2027, 12, 24) + dt.timedelta(days=i) for i in range(14)]  # to 6 January 2028
    assert [d for d in days if is_working_day(d)] == [
        D(2027, 12, 27),
        D(2027, 12, 28),
        D(2027, 12, 29),
        D(2027, 12, 30),
        D(2028, 1, 3),
        D(2028, 1, 4),
        D(2028, 1, 5),
    ]


def test_two_weeks_from_a_friday_before_midsummer_is_a_deadline_moved_to_thursday() -> None:
    # 2026-06-05 + 14 days = midsommarafton 2026-06-19: the deadline is the day before.
    assert period_end(D(2026, 6, 5), 2, "weeks", Direction.DEADLINE) == D(2026, 6, 18)
    assert period_end(D(2026, 6, 5), 2, "weeks", Direction.WAITING) == D(2026, 6, 22)


def test_ten_working_days_skip_easter() -> None:
    # From the Wednesday before Easter 2030: Good Friday, Easter Monday and 1 May are skipped.
    assert add_working_days(D(2030, 4, 17), 10) == D(2030, 5, 6)
    assert add_working_days(D(2030, 5, 6), -10) == D(2030, 4, 17)


@pytest.mark.parametrize("year", range(2026, 2032))
def test_summer_time_starts_last_sunday_of_march_and_ends_last_sunday_of_october(year: int) -> None:
    march_last_sunday = max(D(year, 3, d) for d in range(25, 32) if D(year, 3, d).weekday() == 6)
    october_last_sunday = max(
        D(year, 10, d) for d in range(25, 32) if D(year, 10, d).weekday() == 6
    )
    eight = dt.time(8, 0)
    # 08:00 local is 07:00 UTC in winter and 06:00 UTC in summer.
    assert local_moment(march_last_sunday - dt.timedelta(days=1), eight).hour == 7
    assert local_moment(march_last_sunday, eight).hour == 6
    assert local_moment(october_last_sunday - dt.timedelta(days=1), eight).hour == 6
    assert local_moment(october_last_sunday, eight).hour == 7


def test_local_moment_is_aware_utc() -> None:
    moment = local_moment(D(2027, 4, 13), dt.time(13, 0))
    assert moment == dt.datetime(2027, 4, 13, 11, 0, tzinfo=dt.UTC)


days_2026_2031 = st.dates(min_value=D(2026, 1, 1), max_value=D(2031, 12, 31))


@given(days_2026_2031)
def test_working_day_before_is_the_latest_working_day_not_after(day: dt.date) -> None:
    found = working_day_before(day)
    assert found <= day and is_working_day(found)
    between = [found + dt.timedelta(days=i) for i in range(1, (day - found).days + 1)]
    assert not any(is_working_day(d) for d in between)


@given(days_2026_2031)
def test_working_day_after_is_the_earliest_working_day_not_before(day: dt.date) -> None:
    found = working_day_after(day)
    assert found >= day and is_working_day(found)
    between = [day + dt.timedelta(days=i) for i in range((found - day).days)]
    assert not any(is_working_day(d) for d in between)


@given(days_2026_2031, st.integers(min_value=-60, max_value=60))
def test_adding_working_days_counts_exactly_that_many(day: dt.date, count: int) -> None:
    end = add_working_days(day, count)
    low, high = sorted((day, end))
    span = [low + dt.timedelta(days=i) for i in range(1, (high - low).days + 1)]
    if count < 0:
        span = [low + dt.timedelta(days=i) for i in range((high - low).days)]
    assert sum(is_working_day(d) for d in span) == abs(count)
    if count:
        assert is_working_day(end)
