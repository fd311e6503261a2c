"""The year wheel's geometry: twelve month sectors and a mark per occurrence on its day.

Pure: the page's items in, coordinates out; the template draws them as SVG. January starts at
the top and the year runs clockwise, as on the wheels municipalities pin on the wall. Each kind
of routine has its own ring, and each state its own shape as well as its colour, so the wheel
reads without colour too (the legend names them in words).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass

from core.dates import MONTHS

SIZE = 640
CENTRE = SIZE / 2
MONTH_OUTER = 300.0
MONTH_INNER = 255.0
RINGS = {"meeting": 228.0, "deadline": 196.0, "mailout": 164.0, "reminder": 132.0}
HAND_START = 48.0
STACK = 11.0  # marks on the same day and ring move this far inwards, one after another


@dataclass(frozen=True)
class Sector:
    name: str
    path: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    state: str
    title: str


@dataclass(frozen=True)
class Drawing:
    size: int
    sectors: tuple[Sector, ...]
    rings: tuple[tuple[str, float], ...]
    marks: tuple[Mark, ...]
    # The "today" hand (from, to), when the year is now; it starts clear of the year's number.
    today: tuple[tuple[float, float], tuple[float, float]] | None


def angle(day: dt.date) -> float:
    """Radians from the top, clockwise: the start of 1 January is 0."""
    days = 366 if calendar.isleap(day.year) else 365
    return 2 * math.pi * (day.timetuple().tm_yday - 0.5) / days


def point(radius: float, theta: float) -> tuple[float, float]:
    return (
        round(CENTRE + radius * math.sin(theta), 2),
        round(CENTRE - radius * math.cos(theta), 2),
    )


def _sector(year: int, month: int) -> Sector:
    first = dt.date(year, month, 1)
    days = 366 if calendar.isleap(year) else 365
    start = 2 * math.pi * (first.timetuple().tm_yday - 1) / days
    end = start + 2 * math.pi * calendar.monthrange(year, month)[1] / days
    (ax, ay), (bx, by) = point(MONTH_OUTER, start), point(MONTH_OUTER, end)
    (cx, cy), (dx, dy) = point(MONTH_INNER, end), point(MONTH_INNER, start)
    path = (
        f"M {ax} {ay} A {MONTH_OUTER} {MONTH_OUTER} 0 0 1 {bx} {by} "
        f"L {cx} {cy} A {MONTH_INNER} {MONTH_INNER} 0 0 0 {dx} {dy} Z"
    )
    lx, ly = point((MONTH_OUTER + MONTH_INNER) / 2, (start + end) / 2)
    return Sector(MONTHS[month - 1], path, lx, ly)


def draw(year: int, items: list[tuple[dt.date, str, str, str]], today: dt.date | None) -> Drawing:
    """`items`: (day, kind, state, title) of the year's occurrences."""
    stacked: Counter[tuple[dt.date, str]] = Counter()
    marks = []
    for day, kind, state, title in items:
        ring = RINGS.get(kind, RINGS["reminder"])
        radius = ring - STACK * stacked[(day, kind)]
        stacked[(day, kind)] += 1
        x, y = point(max(radius, 40.0), angle(day))
        marks.append(Mark(x, y, state, title))
    hand = None
    if today is not None and today.year == year:
        hand = (point(HAND_START, angle(today)), point(MONTH_OUTER, angle(today)))
    return Drawing(
        size=SIZE,
        sectors=tuple(_sector(year, m) for m in range(1, 13)),
        rings=tuple(RINGS.items()),
        marks=tuple(marks),
        today=hand,
    )
