"""The one clock seam. Pure functions take `now` as an argument; the shell asks a Clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class SimulatedClock:
    """A clock that only moves when told to (simulate, tests)."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def jump_to(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a simulated moment must be timezone-aware")
        self.current = moment.astimezone(UTC)


def utc(moment: datetime) -> datetime:
    """Return `moment` as an aware UTC datetime; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
