"""Seed 004: the April/October meeting "is convened": while it is not booked, reminders come
again until it is, and when its month ends unbooked the coordinators and the conveners'
managers are told. Booking stops both."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scheduler.calendar import local_moment
from scheduler.occurrences import BookingInfo, message_timings, occurrences, repeat_days
from scheduler.spec import Message, Period, Routine, SchoolYears
from scheduler.workdays import is_working_day, working_day_after

SCHOOL_YEARS = SchoolYears.model_validate(
    {"rule": {"start": {"month": 8, "day": 19}, "end": {"month": 6, "day": 11}}}
)
EIGHT = dt.time(8)


def meeting(month: int = 10, **message: Any) -> Routine:
    return Routine.model_validate(
        {
            "key": "samverkansmote-host",
            "name": "Samverkansmöte",
            "kind": "meeting",
            "when": {"month": month},
            "owners": ["elevhalsochef", "enhetschef-ifo"],
            "meeting": {"time": "13:00"},
            "messages": [
                {
                    "purpose": "boka-vecka",
                    "to": ["elevhalsochef"],
                    "template": "samverkansmote-boka",
                    "before": {"weeks": 1},
                    "repeat": {"weeks": 1},
                    "until_booked": True,
                },
                {
                    "purpose": "obokat",
                    "on": "window_end",
                    "after": {"working_days": 1},
                    "until_booked": True,
                    "to": ["samordnare", "avdelningschef-ifo"],
                    "template": "samverkansmote-obokat",
                },
                {"purpose": "kallelse", "on": "booking", "to": ["rektor"], "template": "t"},
            ],
        }
    )


def test_unbooked_reminders_come_every_week_until_the_month_ends_then_a_notice() -> None:
    (occurrence,) = occurrences(meeting(), SCHOOL_YEARS, [2027])
    assert occurrence.window_end == dt.date(2027, 10, 29)
    timings = message_timings(meeting(), occurrence, EIGHT)
    weekly = [t.due_date for t in timings if t.message.purpose == "boka-vecka"]
    assert weekly == [dt.date(2027, 9, 24)] + [dt.date(2027, 10, d) for d in (1, 8, 15, 22, 29)]
    assert [t.extra["round"] for t in timings if t.message.purpose == "boka-vecka"] == [
        d.isoformat() for d in weekly
    ]
    (notice,) = [t for t in timings if t.message.purpose == "obokat"]
    assert notice.due_date == dt.date(2027, 11, 1)  # the first working day after the month
    assert notice.due_at == local_moment(dt.date(2027, 11, 1), EIGHT)


def test_a_holiday_moves_one_round_forward_and_the_rest_keep_their_weekday() -> None:
    weekly = Period(weeks=1)
    days = repeat_days(dt.date(2027, 4, 29), weekly, dt.date(2027, 5, 28))
    # Thursday 6 May 2027 is Ascension Day: that round goes out on Friday 7 May.
    assert days == [
        dt.date(2027, 4, 29),
        dt.date(2027, 5, 7),
        dt.date(2027, 5, 13),
        dt.date(2027, 5, 20),
        dt.date(2027, 5, 27),
    ]


def test_a_booked_meeting_gets_neither_reminders_nor_the_notice() -> None:
    start = local_moment(dt.date(2027, 10, 12), dt.time(13))
    booking = BookingInfo(start, start + dt.timedelta(hours=2), None, 0, None)
    (occurrence,) = occurrences(meeting(), SCHOOL_YEARS, [2027], {"2027": booking})
    purposes = {t.message.purpose for t in message_timings(meeting(), occurrence, EIGHT)}
    assert purposes == {"kallelse"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"repeat": {"weeks": 1}}, "repeat needs until_booked"),
        ({"repeat": {"days": 0}, "until_booked": True}, "at least one day"),
        ({"repeat": {"weeks": 1}, "until_booked": True, "purpose": "p" * 51}, "at most 50"),
    ],
)
def test_a_repeat_that_cannot_work_is_refused(message: dict[str, Any], expected: str) -> None:
    fields: dict[str, Any] = {"purpose": "p", "to": ["rektor"], "template": "t"}
    fields.update(message)
    with pytest.raises(ValidationError, match=expected):
        Message.model_validate(fields)


@settings(max_examples=200, deadline=None)
@given(
    first=st.dates(dt.date(2026, 1, 1), dt.date(2031, 12, 31)),
    unit=st.sampled_from(["days", "weeks", "working_days"]),
    length=st.integers(1, 10),
    span=st.integers(0, 60),
)
def test_rounds_are_working_days_in_order_within_the_window(
    first: dt.date, unit: str, length: int, span: int
) -> None:
    every = Period.model_validate({unit: length})
    last = first + dt.timedelta(days=span)
    days = repeat_days(first, every, last)
    assert days == sorted(set(days))
    assert all(is_working_day(d) and d <= last for d in days)
    if working_day_after(first) <= last:
        assert days[0] == working_day_after(first)
    # Never a gap longer than the period plus the non-working days that moved a round.
    for earlier, later in itertools.pairwise(days):
        step = length * 7 if unit == "weeks" else length
        assert (later - earlier).days <= (step if unit != "working_days" else 3 * length) + 5
