"""The pure parts: an occurrence's state, and where the wheel puts a day."""

from __future__ import annotations

import datetime as dt

import pytest

from web.queries import State, occurrence_state
from web.wheel import CENTRE, angle, draw

TODAY = dt.date(2027, 3, 1)


@pytest.mark.parametrize(
    ("day", "states", "unbooked", "expected"),
    [
        (dt.date(2027, 3, 16), [], False, State.PLANNED),  # 15 days ahead: beyond "due"
        (dt.date(2027, 3, 15), [], False, State.DUE),  # 14 days ahead
        (TODAY, ["planned"], False, State.DUE),
        (dt.date(2027, 2, 1), ["sent", "sent"], False, State.DONE),
        (dt.date(2027, 2, 1), ["sent", "cancelled"], False, State.DONE),
        (dt.date(2027, 2, 1), ["sent", "retrying"], False, State.DUE),  # still going
        (dt.date(2027, 2, 1), ["sent", "failed"], False, State.MISSED),
        (dt.date(2027, 5, 1), ["failed"], False, State.MISSED),  # a failure shows at once
        (dt.date(2027, 2, 1), [], True, State.MISSED),  # a meeting never booked
        (dt.date(2027, 4, 1), [], True, State.PLANNED),  # not booked yet, not late yet
    ],
)
def test_occurrence_state(day: dt.date, states: list[str], unbooked: bool, expected: State) -> None:
    assert occurrence_state(day, TODAY, states, unbooked, 14) is expected


def test_the_year_starts_at_the_top_and_runs_clockwise() -> None:
    wheel = draw(2027, [(dt.date(2027, 1, 1), "meeting", "due", "a"),
                        (dt.date(2027, 4, 1), "meeting", "due", "b"),
                        (dt.date(2027, 7, 2), "meeting", "due", "c"),
                        (dt.date(2027, 10, 1), "meeting", "due", "d")], None)  # fmt: skip
    top, right, bottom, left = wheel.marks
    assert abs(top.x - CENTRE) < 2 and top.y < CENTRE
    assert right.x > CENTRE and abs(right.y - CENTRE) < 5
    assert abs(bottom.x - CENTRE) < 2 and bottom.y > CENTRE
    assert left.x < CENTRE and abs(left.y - CENTRE) < 5


def test_marks_on_the_same_day_and_ring_do_not_overlap() -> None:
    day = dt.date(2027, 6, 30)
    first, second = draw(
        2027, [(day, "deadline", "due", "a"), (day, "deadline", "due", "b")], None
    ).marks
    assert (first.x, first.y) != (second.x, second.y)


def test_a_leap_year_still_ends_before_it_starts() -> None:
    assert angle(dt.date(2028, 12, 31)) < angle(dt.date(2028, 1, 1)) + 2 * 3.1416
    assert angle(dt.date(2028, 12, 31)) > angle(dt.date(2028, 12, 30))


def test_the_today_hand_only_in_the_year_of_today() -> None:
    assert draw(2027, [], TODAY).today is not None
    assert draw(2026, [], TODAY).today is None
    assert len(draw(2027, [], None).sectors) == 12
