"""Dates and moments typed on the command line: parsed, and kept within the years we plan.

Horizons, deadlines and reminders add days and months to what was typed; near the end of
Python's calendar (9999-12-31) that overflows, and year 0 does not exist at all. Every date a
person gives is therefore held to the years a profile may name (the schema's ActiveYears).
This module imports nothing of ours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

FIRST_YEAR = 2000
LAST_YEAR = 2200
FIRST_DAY = dt.date(FIRST_YEAR, 1, 1)
LAST_DAY = dt.date(LAST_YEAR, 12, 31)
# Swedish month and weekday names (lower case, as written inside a sentence): the messages,
# the year wheel and the meetings page all write dates in Swedish.
MONTHS = (
    "januari", "februari", "mars", "april", "maj", "juni",
    "juli", "augusti", "september", "oktober", "november", "december",
)  # fmt: skip
WEEKDAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
DAY_RULE = f"a date YYYY-MM-DD from {FIRST_DAY} to {LAST_DAY}"
MOMENT_RULE = (
    f"a moment YYYY-MM-DDTHH:MM (local time unless an offset is given) from {FIRST_DAY} "
    f"to {LAST_DAY}"
)
_STOCKHOLM = ZoneInfo("Europe/Stockholm")


def parse_day(text: str) -> dt.date | None:
    """The date `text` names, or None if it names none within the planned years."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def parse_moment(text: str) -> dt.datetime | None:
    """The UTC moment `text` names (local time if it has no offset), or None."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_STOCKHOLM)
    return moment.astimezone(dt.UTC)
