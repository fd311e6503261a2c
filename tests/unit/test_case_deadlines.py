"""Case deadlines as pure functions: weekends, holidays and both summer-time changes.

A deadline ("within two weeks") that ends on a non-working day moves to the previous working
day; a waiting period ("after two weeks") moves to the next one (seed 004, DOMAIN.md).
"""

from __future__ import annotations

import datetime as dt

import pytest

from scheduler.calendar import STOCKHOLM, local_moment
from scheduler.cases import after, overdue_day, period_label, period_text, reminder_day, within
from scheduler.spec import CaseRules, Period

TWO_WEEKS = Period(weeks=2)
RULES = CaseRules()
D = dt.date


@pytest.mark.parametrize(
    ("known", "deadline", "why"),
    [
        (D(2027, 3, 2), D(2027, 3, 16), "an ordinary Tuesday"),
        (D(2027, 3, 6), D(2027, 3, 19), "Saturday 20 March moves back to Friday"),
        (D(2027, 3, 7), D(2027, 3, 19), "Sunday 21 March moves back to Friday"),
        # Christmas to Epiphany: 24-26 Dec, 31 Dec, 1 Jan, 6 Jan are not working days.
        (D(2026, 12, 10), D(2026, 12, 23), "julafton 24 December moves back to the 23rd"),
        (D(2026, 12, 11), D(2026, 12, 23), "juldagen moves back over julafton"),
        (D(2026, 12, 12), D(2026, 12, 23), "annandag jul moves back too"),
        (D(2026, 12, 17), D(2026, 12, 30), "nyårsafton 31 December moves back to the 30th"),
        (D(2026, 12, 18), D(2026, 12, 30), "nyårsdagen moves back over nyårsafton"),
        (D(2026, 12, 23), D(2027, 1, 5), "trettondedag jul 6 January moves back to the 5th"),
        # Easter 2027: långfredag 26 March, påskdagen 28, annandag påsk 29 March.
        (D(2027, 3, 12), D(2027, 3, 25), "långfredag moves back to skärtorsdag"),
        (D(2027, 3, 15), D(2027, 3, 25), "annandag påsk moves back over the whole Easter"),
        # Midsommar 2027: midsommarafton Friday 25 June (de facto), midsommardagen the 26th.
        (D(2027, 6, 11), D(2027, 6, 24), "midsommarafton moves back to Thursday"),
    ],
)
def test_first_meeting_within_two_weeks_moves_back(
    known: dt.date, deadline: dt.date, why: str
) -> None:
    assert within(known, TWO_WEEKS) == deadline, why


@pytest.mark.parametrize(
    ("registered", "contact_from", "why"),
    [
        (D(2027, 3, 1), D(2027, 3, 15), "an ordinary Monday"),
        (D(2027, 3, 6), D(2027, 3, 22), "Saturday moves forward to Monday"),
        (D(2026, 12, 10), D(2026, 12, 28), "julafton, juldagen, annandag jul, weekend: Monday"),
        (D(2026, 12, 17), D(2027, 1, 4), "nyårsafton, nyårsdagen, weekend: Monday 4 January"),
        (D(2026, 12, 23), D(2027, 1, 7), "trettondedag jul moves forward to the 7th"),
        (D(2027, 3, 12), D(2027, 3, 30), "långfredag moves forward over Easter to Tuesday"),
        (D(2027, 6, 11), D(2027, 6, 28), "midsommarafton moves forward to Monday"),
    ],
)
def test_feedback_after_two_weeks_moves_forward(
    registered: dt.date, contact_from: dt.date, why: str
) -> None:
    assert after(registered, TWO_WEEKS) == contact_from, why


def test_second_meeting_runs_from_the_first() -> None:
    first_meeting = D(2027, 3, 10)
    assert within(first_meeting, RULES.second_meeting) == D(2027, 3, 24)


def test_three_weeks_for_a_sip_and_working_days_are_profile_settings() -> None:
    assert within(D(2027, 3, 2), Period(weeks=3)) == D(2027, 3, 23)
    # Ten working days from Friday 12 March 2027 skip Easter (26 and 29 March).
    assert within(D(2027, 3, 12), Period(working_days=10)) == D(2027, 3, 30)
    assert within(D(2027, 3, 2), Period(days=14)) == D(2027, 3, 16)


def test_reminders_before_a_deadline_land_on_working_days_no_later_than_asked() -> None:
    deadline = D(2027, 3, 25)  # skärtorsdag
    assert reminder_day(deadline, Period(weeks=1)) == D(2027, 3, 18)
    assert reminder_day(deadline, Period(working_days=2)) == D(2027, 3, 23)
    # A week before Tuesday 5 January is Tuesday 29 December; two working days before is
    # 30 December (nyårsafton and trettondedag's eve don't count; 4 January is a Monday).
    assert reminder_day(D(2027, 1, 5), Period(working_days=2)) == D(2026, 12, 30)
    # A week before Wednesday 30 June 2027 would be midsommar week's Wednesday: a working day.
    assert reminder_day(D(2027, 7, 2), Period(weeks=1)) == D(2027, 6, 24)  # 25th is midsommarafton


def test_overdue_notice_the_working_day_after_the_deadline() -> None:
    assert overdue_day(D(2027, 3, 16), RULES) == D(2027, 3, 17)
    assert overdue_day(D(2027, 3, 25), RULES) == D(2027, 3, 30)  # after Easter
    assert overdue_day(D(2026, 12, 23), RULES) == D(2026, 12, 28)


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (D(2027, 3, 26), 7),  # Friday before the spring change: CET, 08:00 = 07:00 UTC
        (D(2027, 3, 29), 6),  # Monday after it (28 March): CEST, 08:00 = 06:00 UTC
        (D(2027, 10, 29), 6),  # Friday before the autumn change (31 October): CEST
        (D(2027, 11, 1), 7),  # Monday after it: CET again
    ],
)
def test_reminders_go_out_at_eight_local_time_on_both_sides_of_summer_time(
    day: dt.date, utc_hour: int
) -> None:
    moment = local_moment(day, dt.time(8, 0))
    assert moment.astimezone(STOCKHOLM).hour == 8
    assert moment.astimezone(dt.UTC).hour == utc_hour


def test_a_deadline_across_the_autumn_change_counts_days_not_hours() -> None:
    # 20 October + two weeks: 3 November, although 31 October had 25 hours.
    assert within(D(2027, 10, 20), TWO_WEEKS) == D(2027, 11, 3)
    # And across the spring change (28 March had 23 hours).
    assert within(D(2027, 3, 22), TWO_WEEKS) == D(2027, 4, 5)


def test_labels_and_words_for_periods() -> None:
    assert [period_label(p) for p in RULES.reminders_before] == ["1v", "2ad"]
    assert period_text(TWO_WEEKS) == "två veckor"
    assert period_text(Period(working_days=10)) == "10 arbetsdagar"
    assert period_text(Period(days=1)) == "1 dag"
