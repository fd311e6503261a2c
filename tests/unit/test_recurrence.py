"""Routines that recur more than once a year, by an RFC 5545 recurrence rule (RRULE).

The rule is expanded by dateutil; these tests build the same rule with dateutil's constructor
from its parts (not from the text), so a mistake in how the text is read or anchored shows up.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scheduler.calendar import STOCKHOLM
from scheduler.occurrences import message_timings, occurrences
from scheduler.spec import RRULE_ANCHOR, Routine, SchoolYears
from scheduler.workdays import is_working_day

SCHOOL_YEARS = SchoolYears.model_validate(
    {"rule": {"start": {"month": 8, "day": 19}, "end": {"month": 6, "day": 11}}}
)
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def routine(when: dict[str, Any], kind: str = "deadline", **fields: Any) -> Routine:
    base: dict[str, Any] = {
        "key": "r",
        "name": "Rutin",
        "kind": kind,
        "when": when,
        "owners": ["styrgrupp"],
        "messages": [{"purpose": "p", "to": ["styrgrupp"], "template": "t"}],
    }
    base.update(fields)
    return Routine.model_validate(base)


def test_twice_a_year_gives_two_occurrences_keyed_by_the_rules_day() -> None:
    r = routine({"rrule": "FREQ=YEARLY;BYMONTH=6,12;BYMONTHDAY=15"})
    found = occurrences(r, SCHOOL_YEARS, [2027])
    assert [o.key for o in found] == ["2027-06-15", "2027-12-15"]
    # 15 June 2027 is a Tuesday; 15 December 2027 a Wednesday.
    assert [o.date for o in found] == [dt.date(2027, 6, 15), dt.date(2027, 12, 15)]


def test_a_deadline_on_a_weekend_moves_back_and_keeps_its_key() -> None:
    r = routine({"rrule": "FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=15"})
    (found,) = occurrences(r, SCHOOL_YEARS, [2030])  # 15 June 2030 is a Saturday
    assert found.key == "2030-06-15"
    assert found.date == dt.date(2030, 6, 14)


def test_a_waiting_routine_on_a_holiday_moves_forward() -> None:
    r = routine({"rrule": "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24", "adjust": "waiting"})
    (found,) = occurrences(r, SCHOOL_YEARS, [2027])  # julafton, then Christmas: to the 27th
    assert found.date == dt.date(2027, 12, 27)


def test_interval_counts_from_starts() -> None:
    r = routine(
        {"rrule": "FREQ=MONTHLY;INTERVAL=6;BYDAY=2TU", "starts": "2026-03-01"}, kind="reminder"
    )
    found = occurrences(r, SCHOOL_YEARS, [2027, 2028])
    assert [o.key for o in found] == ["2027-03-09", "2027-09-14", "2028-03-14", "2028-09-12"]


def test_a_recurring_meeting_is_held_at_its_standing_time_on_each_day() -> None:
    r = routine(
        {"rrule": "FREQ=MONTHLY;BYMONTH=2,5,9,11;BYDAY=1TH"},
        kind="meeting",
        meeting={"time": "09:00", "duration_minutes": 90, "place": "stadshuset"},
        messages=[
            {
                "purpose": "kallelse",
                "on": "booking",
                "before": {"weeks": 2},
                "to": ["styrgrupp"],
                "template": "t",
            }
        ],
    )
    found = occurrences(r, SCHOOL_YEARS, [2027])
    assert [o.date for o in found] == [
        dt.date(2027, 2, 4),
        dt.date(2027, 5, 7),  # the 1st Thursday is Ascension Day
        dt.date(2027, 9, 2),
        dt.date(2027, 11, 4),
    ]
    for o in found:
        assert o.booking is not None
        local = o.booking.start.astimezone(STOCKHOLM)
        assert (local.date(), local.time()) == (o.date, dt.time(9))
        (timing,) = message_timings(r, o, dt.time(8))
        assert timing.due_date == o.date - dt.timedelta(weeks=2)


def test_a_recurring_meeting_on_ascension_day_moves_to_the_next_working_day() -> None:
    r = routine(
        {"rrule": "FREQ=YEARLY;BYMONTH=5;BYDAY=1TH"},
        kind="meeting",
        meeting={"time": "09:00"},
    )
    (found,) = occurrences(r, SCHOOL_YEARS, [2027])
    assert found.key == "2027-05-06"  # Kristi himmelsfärds dag
    assert found.date == dt.date(2027, 5, 7)


def test_active_years_limit_a_recurring_routine() -> None:
    r = routine({"rrule": "FREQ=YEARLY;BYMONTH=3,9;BYMONTHDAY=1"}, active={"first": 2028})
    keys = [o.key for o in occurrences(r, SCHOOL_YEARS, range(2026, 2030))]
    assert keys == ["2028-03-01", "2028-09-01", "2029-03-01", "2029-09-01"]


BAD_RULES = [
    ("FREQ=DAILY", "FREQ=YEARLY, MONTHLY or WEEKLY"),
    ("BYMONTH=3", "FREQ=YEARLY, MONTHLY or WEEKLY"),
    ("FREQ=MONTHLY;COUNT=3", "COUNT is not allowed"),
    ("FREQ=MONTHLY;UNTIL=20300101", "UNTIL is not allowed"),
    ("FREQ=MONTHLY;BYHOUR=9", "BYHOUR is not allowed"),
    ("FREQ=MONTHLY;BYDAY=2XX", "not a valid RFC 5545 recurrence rule"),
    ("FREQ=MONTHLY;INTERVAL=zero", "not a valid RFC 5545 recurrence rule"),
    ("FREQ=MONTHLY;;", "NAME=VALUE"),
    ("FREQ=YEARLY;INTERVAL=5", "INTERVAL is at most 4"),
    ("FREQ=WEEKLY;INTERVAL=209", "INTERVAL is at most 208"),
    ("FREQ=MONTHLY\nBYDAY=MO", "line breaks"),
]


@pytest.mark.parametrize(("rule", "expected"), BAD_RULES, ids=[b[0] for b in BAD_RULES])
def test_a_bad_rule_is_refused_at_its_field_without_echoing_it(rule: str, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        routine({"rrule": rule})
    (error,) = caught.value.errors()
    assert error["loc"][:2] == ("when", "rrule")
    assert expected in error["msg"]
    assert rule not in error["msg"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"rrule": "FREQ=YEARLY", "month": 4}, "exactly one of date, month, school_year or rrule"),
        ({"month": 4, "starts": "2026-01-01"}, "starts applies only to rrule"),
    ],
)
def test_rrule_is_one_way_among_the_others(when: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        routine(when)


@pytest.mark.parametrize(
    "when",
    [
        {"rrule": "FREQ=MONTHLY;BYMONTH=13"},
        {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
        {"rrule": "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30"},
        {"rrule": "FREQ=MONTHLY;INTERVAL=6;BYMONTH=3,9"},  # from January: never March
    ],
)
def test_a_rule_that_never_gives_a_day_is_refused_quickly(when: dict[str, Any]) -> None:
    started = time.monotonic()
    with pytest.raises(ValidationError, match="gives no day within 10 years"):
        routine(when)
    assert time.monotonic() - started < 1.5  # dateutil alone would search to 9999: seconds


def test_a_rule_that_fails_only_when_expanded_is_refused() -> None:
    with pytest.raises(ValidationError, match="rrule: not a valid RFC 5545 recurrence rule"):
        routine({"rrule": "FREQ=MONTHLY;BYDAY=+9MO"})


def test_a_recurring_meeting_needs_its_standing_time() -> None:
    with pytest.raises(ValidationError, match=r"needs meeting\.time"):
        routine({"rrule": "FREQ=MONTHLY;BYDAY=1TU"}, kind="meeting", meeting={})


# --- the class: any rule, any year, any direction -----------------------------------------

FREQS = {"YEARLY": du.YEARLY, "MONTHLY": du.MONTHLY, "WEEKLY": du.WEEKLY}


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A rule as text and the same rule as dateutil's constructor arguments."""
    freq = draw(st.sampled_from(sorted(FREQS)))
    interval = draw(st.integers(1, 4))
    text = [f"FREQ={freq}", f"INTERVAL={interval}"]
    kwargs: dict[str, Any] = {"freq": FREQS[freq], "interval": interval}
    if draw(st.booleans()):
        months = sorted(draw(st.sets(st.integers(1, 12), min_size=1, max_size=4)))
        text.append("BYMONTH=" + ",".join(map(str, months)))
        kwargs["bymonth"] = months
    shape = draw(st.sampled_from(["none", "weekday", "nth", "monthday"]))
    if shape == "weekday" or (shape == "nth" and freq == "WEEKLY"):
        day = draw(st.integers(0, 6))
        text.append(f"BYDAY={WEEKDAYS[day]}")
        kwargs["byweekday"] = [day]
    elif shape == "nth":
        day = draw(st.integers(0, 6))
        nth = draw(st.sampled_from([1, 2, 3, 4, -1]))
        text.append(f"BYDAY={nth}{WEEKDAYS[day]}")
        kwargs["byweekday"] = [du.weekday(day, nth)]
    elif shape == "monthday":
        day = draw(st.sampled_from([1, 10, 15, 28, 31, -1]))
        text.append(f"BYMONTHDAY={day}")
        kwargs["bymonthday"] = [day]
    return ";".join(text), kwargs


@settings(max_examples=150, deadline=None)
@given(
    rule=rules(),
    starts=st.dates(dt.date(2020, 1, 1), dt.date(2026, 12, 31)) | st.none(),
    year=st.integers(2026, 2035),
    direction=st.sampled_from(["deadline", "waiting"]),
)
def test_occurrences_are_dateutils_expansion_moved_to_working_days(
    rule: tuple[str, dict[str, Any]], starts: dt.date | None, year: int, direction: str
) -> None:
    text, kwargs = rule
    when: dict[str, Any] = {"rrule": text, "adjust": direction}
    if starts is not None:
        when["starts"] = starts.isoformat()
    anchor = dt.datetime.combine(starts or RRULE_ANCHOR, dt.time())
    oracle = du.rrule(dtstart=anchor, **kwargs)
    try:
        r = routine(when)
    except ValidationError as refused:
        # Refused only when it is true: no day within ten years of the anchor.
        assert "gives no day within 10 years" in str(refused)
        assert not oracle.replace(count=1).between(anchor, anchor.replace(year=anchor.year + 10))
        return
    found = occurrences(r, SCHOOL_YEARS, [year])
    expected = _days_in(oracle, year)
    assert [o.key for o in found] == [d.isoformat() for d in expected]
    for o, raw in zip(found, expected, strict=True):
        assert is_working_day(o.date)
        # Moved the stated way, and only across non-working days.
        if direction == "deadline":
            assert o.date <= raw
            between = _days(o.date + dt.timedelta(days=1), raw)
        else:
            assert o.date >= raw
            between = _days(raw, o.date - dt.timedelta(days=1))
        assert not any(is_working_day(d) for d in between)


def _days_in(rule: du.rrule, year: int) -> list[dt.date]:
    start, end = dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1)
    return sorted(
        [m.date() for m in rule.between(start, end, inc=False)]
        + ([start.date()] if start in rule else [])
    )


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.mark.parametrize(
    "rule", ["FREQ=MONTHLY", "FREQ=MONTHLY;INTERVAL=5", "FREQ=YEARLY", "FREQ=WEEKLY;BYDAY=MO"]
)
def test_a_rule_starting_on_29_february_is_accepted_and_expanded(rule: str) -> None:
    # The ten-year window of a 29 February start ends in a common year: it must not raise.
    r = routine({"rrule": rule, "starts": "2024-02-29", "adjust": "deadline"})
    assert occurrences(r, SCHOOL_YEARS, [2028])  # a leap year: even YEARLY gives its day
