"""What a report or a case is, as frozen views: the pure rules read and return these.

States (report: registered → received; case: open → active ⇄ withdrawn → closed; meetings:
booked → held / cancelled) and the views built from the database by `scheduler/cases/subjects.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from scheduler.calendar import local_date

REPORT = "report"
CASE = "case"


class ReportState(StrEnum):
    REGISTERED = "registered"
    RECEIVED = "received"


class CaseState(StrEnum):
    OPEN = "open"  # raised; consent not yet recorded
    ACTIVE = "active"  # consent recorded: meetings can be booked
    WITHDRAWN = "withdrawn"  # consent withdrawn: everything pending is cancelled
    CLOSED = "closed"


class MeetingState(StrEnum):
    BOOKED = "booked"
    HELD = "held"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class External:
    """An external participant: an address only, never a name."""

    kind: Literal["guardian", "pupil"]
    email: str


@dataclass(frozen=True)
class ReportView:
    reference: str
    state: ReportState
    registered_at: dt.datetime
    reporter: str  # person key
    intake_role: str  # role reference of the intake unit, e.g. mottagning@mottagning-norr
    acute: bool
    suspected_abuse: bool
    wants_feedback: bool
    guardians: tuple[str, ...] = ()
    received_at: dt.datetime | None = None
    received_by: str | None = None  # person key

    @property
    def urgent(self) -> bool:
        """Acute, or suspected violence or abuse: the reporter phones the intake unit first."""
        return self.acute or self.suspected_abuse


@dataclass(frozen=True)
class MeetingView:
    number: int
    state: MeetingState
    start: dt.datetime  # aware UTC
    end: dt.datetime
    location: str | None
    sequence: int
    booked_at: dt.datetime
    held_on: dt.date | None = None
    held_recorded_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None

    @property
    def day(self) -> dt.date:
        return self.held_on or local_date(self.start)


@dataclass(frozen=True)
class SipItemView:
    number: int
    responsible: str  # role reference
    due_on: dt.date


@dataclass(frozen=True)
class CaseView:
    reference: str
    state: CaseState
    known_on: dt.date
    opened_at: dt.datetime
    owner: str  # person key
    owner_role: str
    staff: tuple[str, ...] = ()  # person keys of further staff participants (family worker, ...)
    school_role: str | None = None  # e.g. rektor@bjorkhagsskolan
    externals: tuple[External, ...] = ()
    adult_pupil: bool = False
    sip: bool = False
    suspected_abuse: bool = False  # linked to a report of suspected violence or abuse
    rounds: int = 0  # times consent was withdrawn
    consent_recorded_at: dt.datetime | None = None
    consent_withdrawn_at: dt.datetime | None = None
    meetings: tuple[MeetingView, ...] = ()
    follow_ups: tuple[dt.date, ...] = ()
    sip_items: tuple[SipItemView, ...] = ()
    sip_follow_up: dt.date | None = None
    closed_at: dt.datetime | None = None

    def meeting(self, number: int) -> MeetingView | None:
        return next((m for m in self.meetings if m.number == number), None)

    def live_meeting(self, number: int) -> MeetingView | None:
        """Meeting `number` if it is booked or held (not cancelled)."""
        found = self.meeting(number)
        return found if found is not None and found.state is not MeetingState.CANCELLED else None
