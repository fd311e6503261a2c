"""A clock for tests that stands still at one moment (the app's Clock protocol, core/clock.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class FixedClock:
    current: datetime

    def now(self) -> datetime:
        return self.current
