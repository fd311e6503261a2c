"""Invites stored in a real CalDAV server (Radicale) are found at their instants.

Radicale indexes events with vobject, which keeps the first VTIMEZONE it sees for a TZID for
the whole process: with a definition that covered only one year, summer-time meetings of later
years were found an hour late. Here invites of every year 2026-2040 go into one calendar of
one server (winter 2026 first) and each is looked for by time range just before and after its
start and its end: the invites around every change of the clocks in the corpus
(tests/invite_corpus.py) and two dates a year.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from tests.fixtures.caldav import Radicale
from tests.invite_corpus import Case, corpus

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)


def sample() -> list[Case]:
    """Every change-day invite that starts at half past (the gap, the repeated hour and the
    hours either side), and every 26th week: two dates a year, a summer one among them."""
    cases = corpus()
    return [
        case
        for index, case in enumerate(cases)
        if (case.start.minute == 30 if case.label.startswith("c") else index % 26 == 0)
    ]


def test_radicale_finds_each_invite_at_its_start_and_end(radicale: Radicale) -> None:
    # One calendar a year keeps each query short (Radicale reads every item of a calendar
    # for a time-range query); all calendars share the server process and so vobject's
    # memory of the first VTIMEZONE it saw, which is where the old bug lay.
    cases = sample()
    assert len(cases) == 15 * 4 + 15 * 6 + 31
    assert sum(1 for case in cases if case.start.month in (6, 7, 8)) >= 10
    calendars = {year: radicale.new_calendar() for year in range(2026, 2041)}
    for case in cases:
        radicale.put(calendars[case.start.year], case.label, case.build())
    wrong = []
    for case in cases:
        calendar = calendars[case.start.year]
        start, end = case.start.astimezone(UTC), case.end.astimezone(UTC)
        for low, high, inside in (
            (start - MINUTE, start, False),
            (start, start + MINUTE, True),
            (end - MINUTE, end, True),
            (end, end + MINUTE, False),
        ):
            if (case.label in radicale.overlapping(calendar, low, high)) != inside:
                wrong.append((case.label, start.isoformat(), low.isoformat(), inside))
    assert wrong == []
