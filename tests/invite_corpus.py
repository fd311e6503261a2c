"""A deterministic corpus of invites over the whole booking horizon (2026-2040).

Two parts:

* weekly: every 7th day from 1 January 2026 to 31 December 2040 (783 days), the start time
  walking through the working day (07:00-18:45) so every hour and quarter is met;
* changes: every day on which the clocks change (30), at every half hour from 00:00 to 04:30
  that exists, both occurrences of each repeated time in October, each one hour long.

The texts rotate through the awkward cases (backslash-N, quotes, commas, semicolons, line
breaks, å/ä/ö, emoji, combining characters, lines long enough to fold), so the same corpus
checks instants and texts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from worker.invite import Party, build_invite
from worker.vtimezone import HORIZON

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DTSTAMP = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

SUMMARIES = (
    "Samverkansmöte skola och socialtjänst",
    "Uppföljning \\N Östra skolan",  # a typed backslash-N, not a line break
    'Möte "vårterminen"; rektorer, kurator',
    "Ärenden 😀 och 👩‍👩‍👧 familjer",
    "Café e\u0301lever, Sko\u0308vde",  # combining accents
    "Genomgång av rutiner, ansvar; uppföljning. " * 3,
)
LOCATIONS = (
    "Stadshuset, rum 3",
    "C:\\Nya\\mappen; plan 2",
    "Åkervägen 1\nIngång B",
    'Skolan "Eken", aulan',
    "ö" * 80,  # two-octet characters across every fold
    "😀" * 30,  # four-octet characters across every fold
)
NAMES = (
    "Åsa Öberg",
    'Anna "Nina" Berg',
    "Berg, Anna; rektor",
    "Jean-Luc ^ Ødegård",
    "Zoë O'Brien 😀",
    "Back\\slash Name",
)
DESCRIPTION = "Dagordning:\n1. Öppnande\n2. Aktuella frågor, ärenden; övrigt\n3. C:\\Nya"


@dataclass(frozen=True)
class Case:
    """One invite of the corpus and what it means: the instants zoneinfo gives."""

    label: str
    start: datetime
    end: datetime
    summary: str
    location: str
    name: str

    def build(self) -> bytes:
        return build_invite(
            uid=f"{self.label}@corpus.example.se",
            sequence=0,
            dtstamp=DTSTAMP,
            start=self.start,
            end=self.end,
            summary=self.summary,
            description=DESCRIPTION,
            location=self.location,
            organizer=Party(self.name, "organisator@kommun.example.se"),
            attendees=[Party(self.name, "deltagare@skola.example.se")],
        )


def changes_of_offset(zone: ZoneInfo = STOCKHOLM) -> list[datetime]:
    """The UTC instants at which ``zone`` changes offset in the horizon, hour by hour."""
    found = []
    moment = datetime(HORIZON[0], 1, 1, tzinfo=UTC)
    while moment.year <= HORIZON[-1]:
        following = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            found.append(following)
        moment = following
    return found


def weekly_cases() -> Iterator[Case]:
    day, index = date(HORIZON[0], 1, 1), 0
    while day.year <= HORIZON[-1]:
        minutes = 7 * 60 + (index * 75) % (12 * 60)  # 07:00 ... 18:45
        start = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
        yield _case(f"w{index}", start.replace(tzinfo=STOCKHOLM), index)
        day, index = day + timedelta(days=7), index + 1


def change_day_cases() -> Iterator[Case]:
    index = 0
    for change in changes_of_offset():
        day = change.astimezone(STOCKHOLM).date()
        for half_hours in range(10):  # 00:00 ... 04:30
            for fold in (0, 1):
                at = time(half_hours // 2, 30 * (half_hours % 2), fold=fold)
                start = datetime.combine(day, at, tzinfo=STOCKHOLM)
                if not _exists(start) or (fold and not _repeated(start)):
                    continue
                yield _case(f"c{index}", start, index)
                index += 1


def corpus() -> list[Case]:
    return [*weekly_cases(), *change_day_cases()]


def _case(label: str, start: datetime, index: int) -> Case:
    end = (start.astimezone(UTC) + timedelta(hours=1)).astimezone(STOCKHOLM)  # an exact hour
    return Case(
        label=label,
        start=start,
        end=end,
        summary=SUMMARIES[index % len(SUMMARIES)],
        location=LOCATIONS[index % len(LOCATIONS)],
        name=NAMES[index % len(NAMES)],
    )


def _exists(moment: datetime) -> bool:
    return moment.astimezone(UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == moment.replace(
        tzinfo=None
    )


def _repeated(moment: datetime) -> bool:
    return moment.replace(fold=0).utcoffset() != moment.replace(fold=1).utcoffset()
