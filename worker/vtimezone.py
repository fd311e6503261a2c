"""One VTIMEZONE per zone: the same text in every invite, valid for every year of the horizon.

Calendar servers and clients keep the first definition they see of a TZID (Radicale, through
vobject, does so for its whole process), so a definition that covers only the year of one
meeting makes later meetings of other years resolve with the wrong offset. A zone whose
changes follow one yearly rule (the EU rule in force since 1996 for Europe/Stockholm: last
Sunday of March 02:00 CET, last Sunday of October 03:00 CEST) is therefore written as two
observances with an RRULE, starting in 1970 as Apple Calendar, Thunderbird and tzurl.org
write them (Outlook writes the same rule from 1601). The rule is derived from zoneinfo and
checked against zoneinfo for every change of every year of ``HORIZON``; a zone without
changes gets one STANDARD observance. Any other zone (rules that do not fit "n-th weekday of
a month") falls back to the list of its changes over the horizon and the meeting's years.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone
from icalendar.cal.timezone import TimezoneDaylight, TimezoneStandard

# The booking horizon: every rule is checked against zoneinfo for each of these years.
HORIZON = range(2026, 2041)
_RULE_FROM_YEAR = 1970
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class _Change:
    """One change of offset: the UTC instant and the offsets either side."""

    utc: datetime
    offset_from: timedelta
    offset_to: timedelta


@dataclass(frozen=True)
class _Rule:
    """A yearly change: the ``nth`` (-1: last) ``weekday`` of ``month`` at local ``at``."""

    month: int
    weekday: int
    nth: int
    at: time
    offset_from: timedelta
    offset_to: timedelta
    name: str
    daylight: bool

    def local(self, year: int) -> datetime:
        """The local time (read in ``offset_from``) of the change in ``year``."""
        days = [
            day
            for day in range(1, calendar.monthrange(year, self.month)[1] + 1)
            if date(year, self.month, day).weekday() == self.weekday
        ]
        day = days[self.nth if self.nth < 0 else self.nth - 1]
        return datetime.combine(date(year, self.month, day), self.at)

    def change(self, year: int) -> _Change:
        utc = (self.local(year) - self.offset_from).replace(tzinfo=UTC)
        return _Change(utc, self.offset_from, self.offset_to)


def vtimezone(zone: ZoneInfo, first_year: int, last_year: int) -> Timezone:
    """A fresh VTIMEZONE component for ``zone`` (the years matter only for the fallback)."""
    rule_based = _rule_based_ical(zone)
    ical = rule_based if rule_based is not None else _sliced_ical(zone, first_year, last_year)
    timezone = Timezone.from_ical(ical)
    assert isinstance(timezone, Timezone)
    return timezone


@lru_cache(maxsize=16)
def _rule_based_ical(zone: ZoneInfo) -> bytes | None:
    """The rule-based VTIMEZONE of ``zone``, or None when its changes fit no yearly rule."""
    first = _changes(zone, HORIZON[0])
    rules = [_rule(zone, change) for change in first]
    if len(rules) not in (0, 2) or any(rule is None for rule in rules):
        return None
    checked = [rule for rule in rules if rule is not None]
    for year in HORIZON:
        if sorted(_changes(zone, year), key=_utc) != sorted(
            (rule.change(year) for rule in checked), key=_utc
        ):
            return None
    timezone = Timezone()
    timezone.add("tzid", zone.key)
    if not checked:
        timezone.add_component(_fixed(zone))
    for rule in sorted(checked, key=lambda rule: rule.month):
        timezone.add_component(_observance(rule))
    return bytes(timezone.to_ical())


def _utc(change: _Change) -> datetime:
    return change.utc


def _changes(zone: ZoneInfo, year: int) -> list[_Change]:
    """Every change of offset in ``zone`` during ``year`` (UTC), found day by day."""
    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    while moment.year == year:
        following = moment + timedelta(days=1)
        before, after = _offset(zone, moment), _offset(zone, following)
        if before != after:
            changes.append(_Change(_first_with(zone, moment, following, after), before, after))
        moment = following
    return changes


def _offset(zone: ZoneInfo, moment: datetime) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _first_with(zone: ZoneInfo, low: datetime, high: datetime, offset: timedelta) -> datetime:
    """The first second in (low, high] with ``offset``; ``low`` has another offset."""
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _offset(zone, middle) == offset:
            high = middle
        else:
            low = middle
    return high


def _rule(zone: ZoneInfo, change: _Change) -> _Rule | None:
    local = (change.utc + change.offset_from).replace(tzinfo=None)
    last_day = calendar.monthrange(local.year, local.month)[1]
    nth = -1 if local.day + 7 > last_day else (local.day - 1) // 7 + 1
    after = change.utc.astimezone(zone)
    dst = after.dst()
    return _Rule(
        month=local.month,
        weekday=local.weekday(),
        nth=nth,
        at=local.time(),
        offset_from=change.offset_from,
        offset_to=change.offset_to,
        name=after.tzname() or zone.key,
        daylight=bool(dst),
    )


def _observance(rule: _Rule) -> TimezoneStandard | TimezoneDaylight:
    observance = TimezoneDaylight() if rule.daylight else TimezoneStandard()
    observance.add("tzname", rule.name)
    observance.add("tzoffsetfrom", rule.offset_from)
    observance.add("tzoffsetto", rule.offset_to)
    observance.add("dtstart", rule.local(_RULE_FROM_YEAR))
    observance.add(
        "rrule",
        {"freq": "YEARLY", "bymonth": rule.month, "byday": f"{rule.nth}{_WEEKDAYS[rule.weekday]}"},
    )
    return observance


def _fixed(zone: ZoneInfo) -> TimezoneStandard:
    moment = datetime(HORIZON[0], 1, 1, tzinfo=UTC).astimezone(zone)
    observance = TimezoneStandard()
    observance.add("tzname", moment.tzname() or zone.key)
    observance.add("tzoffsetfrom", _offset(zone, moment))
    observance.add("tzoffsetto", _offset(zone, moment))
    observance.add("dtstart", datetime(_RULE_FROM_YEAR, 1, 1))
    return observance


# --- fallback: the list of changes --------------------------------------------------------------


@lru_cache(maxsize=64)
def _sliced_ical(zone: ZoneInfo, first_year: int, last_year: int) -> bytes:
    """Every change from 1 January of the earlier of the horizon and ``first_year`` to the end
    of the later of the horizon and ``last_year``, from ``icalendar.Timezone.from_tzinfo``.

    Each onset is then set to the local time *before* the change, as RFC 5545 requires (the
    onset is read in TZOFFSETFROM): icalendar 7.3 writes the local time after the change.
    """
    key = zone.key
    assert key is not None
    first = date(min(first_year, HORIZON[0]), 1, 1)
    last = date(max(last_year, HORIZON[-1]) + 1, 1, 1)
    timezone = Timezone.from_tzinfo(zone, key, first_date=first, last_date=last)
    for observance in timezone.walk():
        if isinstance(observance, (TimezoneStandard, TimezoneDaylight)):
            _fix_onsets(observance, zone)
    return bytes(timezone.to_ical())


def _fix_onsets(observance: TimezoneStandard | TimezoneDaylight, zone: ZoneInfo) -> None:
    offset_from: timedelta = observance.TZOFFSETFROM
    offset_to: timedelta = observance.TZOFFSETTO
    if offset_from == offset_to:
        return  # the opening observance at the start of the range, not a change of offset
    observance.DTSTART = _onset(zone, observance.DTSTART, offset_from, offset_to)
    rdates = [start for start, _end in observance.rdates]
    if rdates:
        observance.rdates = [_onset(zone, start, offset_from, offset_to) for start in rdates]


def _onset(
    zone: ZoneInfo, approximate: datetime, offset_from: timedelta, offset_to: timedelta
) -> datetime:
    """The local time, read in ``offset_from``, at which ``zone`` changes to ``offset_to``.

    Searches the day either side of ``approximate``; if the change is not found there, the
    library's value is kept.
    """
    guess = (approximate.replace(tzinfo=UTC) - offset_from).replace(microsecond=0)
    low, high = guess - timedelta(days=1), guess + timedelta(days=1)
    if _offset(zone, low) != offset_from or _offset(zone, high) != offset_to:
        return approximate
    return (_first_with(zone, low, high, offset_to) + offset_from).replace(tzinfo=None)
