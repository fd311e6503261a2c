"""The one check for a routine meeting's booking (scheduler/bookings.py): every rule, and the
local-time rules over every minute of the clock changes and random dates of several years."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.bookings import NonexistentLocalTime, Rule, check_booking, local_start
from scheduler.calendar import STOCKHOLM
from scheduler.spec import Routine
from scheduler.workdays import is_working_day

YEARS = range(2026, 2032)
D = dt.date


def meeting(month: int | None = 4, duration: int = 120, kind: str = "meeting") -> Routine:
    when = {"month": month} if month is not None else {"date": {"month": 4, "day": 15}}
    data: dict[str, object] = {
        "key": "samverkansmote",
        "name": "Samverkansmöte",
        "kind": kind,
        "when": when,
        "owners": ["elevhalsochef"],
        "messages": [{"purpose": "p", "to": ["rektor"], "template": "t"}],
    }
    if kind == "meeting":
        data["meeting"] = {"duration_minutes": duration}
    return Routine.model_validate(data)


def last_sunday(year: int, month: int) -> dt.date:
    day = D(year, month + 1, 1) - dt.timedelta(days=1)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def wall(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(STOCKHOLM).replace(tzinfo=None)


def every_minute() -> list[dt.time]:
    return [dt.time(h, m) for h in range(24) for m in range(60)]


@pytest.mark.parametrize("year", YEARS)
def test_every_minute_of_the_spring_change_exists_or_is_refused_as_the_gap(year: int) -> None:
    day = last_sunday(year, 3)
    for at in every_minute():
        if at.hour == 2:
            with pytest.raises(NonexistentLocalTime, match="clocks go forward"):
                local_start(day, at)
        else:
            assert wall(local_start(day, at)) == dt.datetime.combine(day, at)


@pytest.mark.parametrize("year", YEARS)
def test_every_minute_of_the_autumn_change_means_its_first_pass(year: int) -> None:
    day = last_sunday(year, 10)
    for at in every_minute():
        start = local_start(day, at)
        assert wall(start) == dt.datetime.combine(day, at)
        if at.hour == 2:  # the repeated hour: the first pass, still summer time
            assert start.astimezone(STOCKHOLM).utcoffset() == dt.timedelta(hours=2)
            assert start.astimezone(STOCKHOLM).fold == 0


def expected_rules(routine: Routine, day: dt.date, at: dt.time, year: int) -> set[Rule]:
    """Each rule worked out independently of the module under test."""
    broken = set()
    if routine.when.month is not None and (day.year, day.month) != (year, routine.when.month):
        broken.add(Rule.MONTH)
    if day.weekday() >= 5 or not is_working_day(day):
        broken.add(Rule.WORKING_DAY)
    naive = dt.datetime.combine(day, at)
    round_trip = naive.replace(tzinfo=STOCKHOLM).astimezone(dt.UTC).astimezone(STOCKHOLM)
    if round_trip.replace(tzinfo=None) != naive:
        broken.add(Rule.LOCAL_TIME)
    return broken


@settings(max_examples=600, deadline=None)
@given(
    day=st.dates(D(2026, 1, 1), D(2031, 12, 31)),
    at=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    month=st.one_of(st.none(), st.integers(1, 12)),
    year_shift=st.sampled_from([0, 0, 0, -1, 1]),
    duration=st.integers(15, 600),
)
def test_accepted_bookings_keep_their_wall_time_and_refusals_name_a_broken_rule(
    day: dt.date, at: dt.time, month: int | None, year_shift: int, duration: int
) -> None:
    routine = meeting(month, duration)
    year = day.year + year_shift
    check = check_booking(routine, day, at, occurrence_year=year)
    assert {p.rule for p in check.problems} == expected_rules(routine, day, at, year)
    if check.ok:
        assert check.start is not None and check.end is not None
        assert wall(check.start) == dt.datetime.combine(day, at)
        assert check.end - check.start == dt.timedelta(minutes=duration)
    else:
        assert check.start is None and all(p.message for p in check.problems)


@settings(max_examples=300, deadline=None)
@given(
    day=st.sampled_from([last_sunday(y, m) for y in YEARS for m in (3, 10)]),
    at=st.times(dt.time(0), dt.time(4)).map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_a_booking_on_a_clock_change_night_is_refused_for_the_day_and_named_for_the_gap(
    day: dt.date, at: dt.time
) -> None:
    check = check_booking(meeting(day.month), day, at)
    rules = {p.rule for p in check.problems}
    assert Rule.WORKING_DAY in rules  # the clocks change on a Sunday
    assert (Rule.LOCAL_TIME in rules) == (day.month == 3 and at.hour == 2)


def test_the_gap_message_names_the_rule() -> None:
    check = check_booking(meeting(3), D(2027, 3, 28), dt.time(2, 30))
    (gap,) = [p for p in check.problems if p.rule is Rule.LOCAL_TIME]
    assert gap.field == "time"
    assert "does not exist" in gap.message and "summer time begins" in gap.message


def test_a_meeting_ending_in_the_repeated_hour_lasts_its_duration() -> None:
    # Not bookable by the day rule (a Sunday), but the times are well defined all the same.
    start = local_start(D(2027, 10, 31), dt.time(1, 30))
    end = start + dt.timedelta(minutes=90)
    assert end.astimezone(STOCKHOLM).fold == 1  # 02:00 again, now winter time
    assert wall(end) == dt.datetime(2027, 10, 31, 2, 0)


def test_a_command_cannot_book_a_meeting_that_has_begun_and_a_profile_keeps_it() -> None:
    now = dt.datetime(2027, 4, 13, 11, 0, tzinfo=dt.UTC)  # 13:00 in Stockholm
    for at, begun in ((dt.time(12, 59), True), (dt.time(13, 0), True), (dt.time(13, 1), False)):
        check = check_booking(meeting(4), D(2027, 4, 13), at, now=now)
        assert (Rule.NOT_BEGUN in {p.rule for p in check.problems}) is begun
        assert check_booking(meeting(4), D(2027, 4, 13), at).ok


def test_only_a_meeting_can_be_booked() -> None:
    check = check_booking(meeting(None, kind="deadline"), D(2027, 4, 13), dt.time(13))
    assert [p.rule for p in check.problems] == [Rule.MEETING]


def test_a_time_with_an_offset_is_refused() -> None:
    at = dt.time(13, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    check = check_booking(meeting(4), D(2027, 4, 13), at)
    assert [p.rule for p in check.problems] == [Rule.NO_OFFSET]


def test_the_year_booked_for_must_be_the_meetings_year() -> None:
    check = check_booking(meeting(4), D(2028, 4, 11), dt.time(13), occurrence_year=2027)
    assert [(p.rule, p.field) for p in check.problems] == [(Rule.MONTH, "date")]
    assert "April 2027" in check.problems[0].message
