"""Routine rules → occurrences → message due times (pure, no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from scheduler.calendar import STOCKHOLM, school_year_on, school_year_starting
from scheduler.occurrences import BookingInfo, message_timings, nth_weekday, occurrences
from scheduler.spec import Routine, SchoolYears, StandingDay

D = dt.date
EIGHT = dt.time(8, 0)
SCHOOL_YEARS = SchoolYears.model_validate(
    {
        "years": [{"start": "2027-08-18", "end": "2028-06-09"}],
        "rule": {"start": {"month": 8, "day": 19}, "end": {"month": 6, "day": 11}},
    }
)


def routine(**fields: Any) -> Routine:
    base: dict[str, Any] = {
        "key": "r",
        "name": "Rutin",
        "kind": "deadline",
        "owners": ["elevhalsochef"],
        "messages": [{"purpose": "p", "to": ["elevhalsochef"], "template": "t"}],
    }
    base.update(fields)
    return Routine.model_validate(base)


EVALUATION = routine(
    key="utvardering",
    when={"date": {"month": 6, "day": 30}},
    messages=[
        {
            "purpose": "paminnelse-30",
            "to": ["elevhalsochef"],
            "template": "t",
            "before": {"days": 30},
        },
        {
            "purpose": "paminnelse-7",
            "to": ["elevhalsochef"],
            "template": "t",
            "before": {"days": 7},
        },
    ],
)


@pytest.mark.parametrize(
    ("year", "due"),
    [
        (2026, D(2026, 6, 30)),
        (2027, D(2027, 6, 30)),
        (2028, D(2028, 6, 30)),
        (2029, D(2029, 6, 29)),
        (2030, D(2030, 6, 28)),
        (2031, D(2031, 6, 30)),
    ],
)
def test_evaluation_by_30_june_moves_to_the_previous_working_day(year: int, due: dt.date) -> None:
    (found,) = occurrences(EVALUATION, SCHOOL_YEARS, [year])
    assert found.date == due
    assert found.key == str(year)


def test_evaluation_reminders_before_a_weekend_move_earlier() -> None:
    (occurrence,) = occurrences(EVALUATION, SCHOOL_YEARS, [2026])
    timings = {t.message.purpose: t for t in message_timings(EVALUATION, occurrence, EIGHT)}
    # 30 June 2026 − 30 days = Sunday 31 May → Friday 29 May; − 7 days = Tuesday 23 June.
    assert timings["paminnelse-30"].due_date == D(2026, 5, 29)
    assert timings["paminnelse-7"].due_date == D(2026, 6, 23)
    assert timings["paminnelse-7"].due_at == dt.datetime(2026, 6, 23, 6, 0, tzinfo=dt.UTC)


def test_reminder_in_winter_is_sent_at_eight_local_which_is_seven_utc() -> None:
    r = routine(
        when={"date": {"month": 1, "day": 20}},
        messages=[
            {"purpose": "p", "to": ["elevhalsochef"], "template": "t", "before": {"days": 1}}
        ],
    )
    (occurrence,) = occurrences(r, SCHOOL_YEARS, [2027])
    (timing,) = message_timings(r, occurrence, EIGHT)
    assert timing.due_at == dt.datetime(2027, 1, 19, 7, 0, tzinfo=dt.UTC)


MEETING = routine(
    key="samverkansmote-var",
    kind="meeting",
    when={"month": 4},
    meeting={"duration_minutes": 120, "place": "stadshuset"},
    messages=[
        {
            "purpose": "boka-6v",
            "to": ["elevhalsochef"],
            "template": "t",
            "before": {"weeks": 6},
            "until_booked": True,
        },
        {
            "purpose": "kallelse",
            "to": ["rektor"],
            "template": "t",
            "on": "booking",
            "before": {"weeks": 3},
        },
    ],
)


def booking(day: dt.date, booked_at: dt.datetime | None = None, sequence: int = 0) -> BookingInfo:
    start = dt.datetime.combine(day, dt.time(13), tzinfo=STOCKHOLM).astimezone(dt.UTC)
    return BookingInfo(start, start + dt.timedelta(hours=2), "Stadshuset", sequence, booked_at)


def test_unbooked_april_meeting_reminds_conveners_and_sends_no_invite() -> None:
    (occurrence,) = occurrences(MEETING, SCHOOL_YEARS, [2027])
    assert occurrence.date == D(2027, 4, 1) and occurrence.window_end == D(2027, 4, 30)
    purposes = [t.message.purpose for t in message_timings(MEETING, occurrence, EIGHT)]
    assert purposes == ["boka-6v"]


def test_booked_meeting_sends_invites_three_weeks_ahead_and_no_booking_reminder() -> None:
    booked_long_ago = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    (occurrence,) = occurrences(
        MEETING, SCHOOL_YEARS, [2027], {"2027": booking(D(2027, 4, 13), booked_long_ago)}
    )
    (timing,) = message_timings(MEETING, occurrence, EIGHT)
    assert occurrence.date == D(2027, 4, 13)
    assert timing.message.purpose == "kallelse"
    assert timing.due_date == D(2027, 3, 23)


def test_meeting_booked_late_sends_its_invites_at_once() -> None:
    booked_at = dt.datetime(2027, 4, 6, 9, 30, tzinfo=dt.UTC)
    (occurrence,) = occurrences(
        MEETING, SCHOOL_YEARS, [2027], {"2027": booking(D(2027, 4, 13), booked_at)}
    )
    (timing,) = message_timings(MEETING, occurrence, EIGHT)
    assert timing.due_at == booked_at


def test_rebooked_meeting_invites_carry_the_new_sequence() -> None:
    (occurrence,) = occurrences(
        MEETING, SCHOOL_YEARS, [2027], {"2027": booking(D(2027, 4, 20), sequence=2)}
    )
    (timing,) = message_timings(MEETING, occurrence, EIGHT)
    assert timing.extra == {"sequence": "2"}


def test_standing_day_second_tuesday_of_october() -> None:
    assert nth_weekday(2027, 10, StandingDay(nth=2, weekday="tuesday")) == D(2027, 10, 12)


def test_school_year_listed_is_used_and_others_follow_the_rule() -> None:
    assert school_year_starting(SCHOOL_YEARS, 2027).start == D(2027, 8, 18)
    made = school_year_starting(SCHOOL_YEARS, 2029)
    # 19 August 2029 is a Sunday: school starts Monday 20 August; 11 June 2030 is a Tuesday.
    assert (made.start, made.end, made.label) == (D(2029, 8, 20), D(2030, 6, 11), "2029/30")
    assert school_year_on(SCHOOL_YEARS, D(2028, 7, 1)) is None
    year = school_year_on(SCHOOL_YEARS, D(2028, 1, 10))
    assert year is not None and year.label == "2027/28"


def test_school_start_mailout_and_a_parent_meeting_reminder_two_weeks_later() -> None:
    mailout = routine(kind="mailout", when={"school_year": "start"})
    parents = routine(kind="reminder", when={"school_year": "start", "offset": {"weeks": 2}})
    (start,) = occurrences(mailout, SCHOOL_YEARS, [2027])
    (later,) = occurrences(parents, SCHOOL_YEARS, [2027])
    assert (start.key, start.date) == ("2027/28", D(2027, 8, 18))
    assert later.date == D(2027, 9, 1)


def test_action_plan_due_at_school_year_end() -> None:
    plan = routine(when={"school_year": "end"})
    (found,) = occurrences(plan, SCHOOL_YEARS, [2027])
    assert found.date == D(2028, 6, 9)


def test_29_february_occurs_only_in_leap_years() -> None:
    leap = routine(when={"date": {"month": 2, "day": 29}})
    assert [o.key for o in occurrences(leap, SCHOOL_YEARS, range(2026, 2032))] == ["2028"]


def test_active_years_limit_occurrences() -> None:
    limited = routine(when={"date": {"month": 3, "day": 31}}, active={"first": 2027, "last": 2028})
    assert [o.key for o in occurrences(limited, SCHOOL_YEARS, range(2026, 2032))] == [
        "2027",
        "2028",
    ]


@pytest.mark.parametrize("month", range(1, 13))
def test_a_deadline_in_every_month_lands_on_a_working_day(month: int) -> None:
    from scheduler.workdays import is_working_day

    r = routine(when={"date": {"month": month, "day": 28}})
    for occurrence in occurrences(r, SCHOOL_YEARS, range(2026, 2032)):
        assert is_working_day(occurrence.date)
        assert occurrence.date <= D(int(occurrence.key), month, 28)
