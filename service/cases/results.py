"""What a case-work command did: a typed result every interface can present."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.cases.outbox import SyncResult


@dataclass(frozen=True)
class Outcome:
    """What a command did, in lines a person can read (no personal data about the child), and
    what it did to the outbox (`sync`: created, cancelled, ...; None when nothing was planned)."""

    reference: str
    lines: tuple[str, ...] = ()
    sync: SyncResult | None = None

    def __str__(self) -> str:
        return "\n".join(self.lines)
