"""Case work's pure rules: deadline maths, the state machines' transitions, a case's deadlines.

Nothing here touches the database or the clock: `now` is passed in. A transition checks the
rules and returns the next view (scheduler/cases/views.py) or raises CaseRuleError.

Deadlines (seed 004): the first meeting within two weeks of the case becoming known, the second
within two weeks of the first; a deadline on a non-working day moves to the previous working
day. Feedback to a reporter after two weeks: a waiting period, so it moves to the next one.
Lengths and kinds of days come from the municipality's profile (`cases:`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from core.errors import CaseRuleError as CaseRuleError  # re-exported
from scheduler import bookings
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases.views import (
    CaseState,
    CaseView,
    MeetingState,
    MeetingView,
    ReportState,
    ReportView,
    SipItemView,
)
from scheduler.spec import CaseRules, Period
from scheduler.workdays import (
    Direction,
    add_working_days,
    holiday_name,
    is_working_day,
    period_end,
)

# --- deadline maths -----------------------------------------------------------------------------


def shift(day: dt.date, period: Period, sign: int, direction: Direction) -> dt.date:
    """`period` after (sign +1) or before (sign -1) `day`; a calendar period that ends on a
    non-working day moves as `direction` says, a period of working days ends on one."""
    if period.unit == "working_days":
        return add_working_days(day, sign * period.length)
    return period_end(day, sign * period.length, period.unit, direction)


def within(start: dt.date, period: Period) -> dt.date:
    """The last day of "within `period` of `start`": a deadline."""
    return shift(start, period, +1, Direction.DEADLINE)


def after(start: dt.date, period: Period) -> dt.date:
    """The first day of "after `period` from `start`": a waiting period."""
    return shift(start, period, +1, Direction.WAITING)


def reminder_day(deadline: dt.date, before: Period) -> dt.date:
    """A reminder `before` the deadline, on a working day no later than asked."""
    return shift(deadline, before, -1, Direction.DEADLINE)


def overdue_day(deadline: dt.date, rules: CaseRules) -> dt.date:
    """When a missed deadline is reported: `overdue_after` the deadline, on a working day."""
    return shift(deadline, rules.overdue_after, +1, Direction.WAITING)


def period_label(period: Period) -> str:
    """A short, stable label for keys: 7d, 1v (veckor), 2ad (arbetsdagar)."""
    suffix = {"days": "d", "weeks": "v", "working_days": "ad"}[period.unit]
    return f"{period.length}{suffix}"


def period_text(period: Period) -> str:
    """Swedish words for a period, for messages: "två veckor", "10 arbetsdagar"."""
    words = {1: "en", 2: "två", 3: "tre", 4: "fyra", 5: "fem", 6: "sex"}
    n = period.length
    number = words.get(n, str(n)) if period.unit == "weeks" else str(n)
    if period.unit == "weeks":
        return f"{number} {'vecka' if n == 1 else 'veckor'}"
    if period.unit == "days":
        return f"{number} {'dag' if n == 1 else 'dagar'}"
    return f"{number} {'arbetsdag' if n == 1 else 'arbetsdagar'}"


# --- report transitions -------------------------------------------------------------------------


def receive_report(report: ReportView, receiver: str, now: dt.datetime) -> ReportView:
    """The intake unit confirms receipt; the reporter is told by whom."""
    if report.state is ReportState.RECEIVED:
        raise CaseRuleError(f"report {report.reference} was received already")
    if now < report.registered_at:
        raise CaseRuleError("a report cannot be received before it was registered")
    return replace(report, state=ReportState.RECEIVED, received_at=now, received_by=receiver)


# --- case transitions ---------------------------------------------------------------------------


def check_open(known_on: dt.date, now: dt.datetime, owner_role: str, rules: CaseRules) -> None:
    if owner_role not in rules.owner_roles:
        allowed = ", ".join(rules.owner_roles)
        raise CaseRuleError(f"a case owner must hold one of the roles {allowed}")
    if known_on > local_date(now):
        raise CaseRuleError(f"the case cannot become known in the future ({known_on})")


def give_consent(case: CaseView, now: dt.datetime, pupil_own: bool) -> CaseView:
    """Record consent; required before any meeting is booked."""
    _not_closed(case)
    if case.state is CaseState.ACTIVE:
        raise CaseRuleError(f"case {case.reference} has consent already")
    if case.adult_pupil and not pupil_own:
        raise CaseRuleError(
            "the pupil is 18 or older: record the pupil's own consent (--pupil-own)"
        )
    return replace(case, state=CaseState.ACTIVE, consent_recorded_at=now)


def withdraw_consent(case: CaseView, now: dt.datetime) -> CaseView:
    """Consent withdrawn: meetings not yet held are cancelled, and so is every reminder."""
    if case.state is not CaseState.ACTIVE:
        raise CaseRuleError(f"case {case.reference} has no consent in force to withdraw")
    return replace(
        case,
        state=CaseState.WITHDRAWN,
        consent_withdrawn_at=now,
        rounds=case.rounds + 1,
        meetings=_cancel_upcoming(case.meetings, now),
    )


def book_meeting(
    case: CaseView,
    number: int | None,
    start: dt.datetime,
    minutes: int,
    location: str | None,
    now: dt.datetime,
) -> CaseView:
    """Book (or move) meeting `number`; the next one when not given."""
    _not_closed(case)
    if case.state is not CaseState.ACTIVE:
        raise CaseRuleError(
            f"case {case.reference}: consent must be recorded before a meeting is booked"
        )
    number = number or _next_number(case)
    _check_meeting_time(case, number, start, now)
    existing = case.meeting(number)
    end = start + dt.timedelta(minutes=minutes)
    if existing is not None and existing.state is MeetingState.HELD:
        raise CaseRuleError(f"meeting {number} was held already; book meeting {number + 1}")
    if existing is None:
        meeting = MeetingView(number, MeetingState.BOOKED, start, end, location, 0, now)
    elif (existing.start, existing.end, existing.location) == (start, end, location) and (
        existing.state is MeetingState.BOOKED
    ):
        return case  # booked like that already: nothing changes
    else:
        meeting = replace(
            existing,
            state=MeetingState.BOOKED,
            start=start,
            end=end,
            location=location,
            sequence=existing.sequence + 1,
            booked_at=now,
            cancelled_at=None,
        )
    others = tuple(m for m in case.meetings if m.number != number)
    return replace(case, meetings=tuple(sorted((*others, meeting), key=lambda m: m.number)))


def hold_meeting(
    case: CaseView, number: int, held_on: dt.date | None, now: dt.datetime
) -> CaseView:
    """Record that meeting `number` took place (on its booked day unless told otherwise)."""
    _not_closed(case)
    meeting = case.meeting(number)
    if meeting is None or meeting.state is MeetingState.CANCELLED:
        raise CaseRuleError(f"case {case.reference} has no booked meeting {number}")
    if meeting.state is MeetingState.HELD:
        raise CaseRuleError(f"meeting {number} is recorded as held already")
    day = held_on or local_date(meeting.start)
    if day > local_date(now):
        raise CaseRuleError(f"meeting {number} cannot be held in the future ({day})")
    if day < case.known_on:
        raise CaseRuleError(f"meeting {number} cannot be held before the case became known")
    held = replace(meeting, state=MeetingState.HELD, held_on=day, held_recorded_at=now)
    return replace(case, meetings=tuple(held if m.number == number else m for m in case.meetings))


def add_follow_ups(case: CaseView, days: list[dt.date], now: dt.datetime) -> CaseView:
    """Follow-up dates from the minutes: each becomes a reminder to the case owner."""
    _not_closed(case)
    if not any(m.state is MeetingState.HELD for m in case.meetings):
        raise CaseRuleError("minutes belong to a meeting that was held: record it with `hold`")
    today = local_date(now)
    past = [d for d in days if d <= today]
    if past:
        raise CaseRuleError(f"a follow-up date must be after today ({past[0]})")
    return replace(case, follow_ups=tuple(sorted(set(case.follow_ups) | set(days))))


def add_sip_item(
    case: CaseView, responsible: str, due_on: dt.date, now: dt.datetime
) -> tuple[CaseView, int]:
    _not_closed(case)
    if not case.sip:
        raise CaseRuleError(f"case {case.reference} is not a SIP: mark it with `case sip`")
    if due_on <= local_date(now):
        raise CaseRuleError(f"an action's time must be after today ({due_on})")
    number = max((i.number for i in case.sip_items), default=0) + 1
    item = SipItemView(number, responsible, due_on)
    return replace(case, sip_items=(*case.sip_items, item)), number


def close_case(case: CaseView, now: dt.datetime, by_owner_or_admin: bool) -> CaseView:
    """Only the case owner (or an administrator) closes; meetings still to come are cancelled."""
    _not_closed(case)
    if not by_owner_or_admin:
        raise CaseRuleError(
            f"only the case owner or an administrator may close case {case.reference}"
        )
    return replace(
        case,
        state=CaseState.CLOSED,
        closed_at=now,
        meetings=_cancel_upcoming(case.meetings, now),
    )


def _not_closed(case: CaseView) -> None:
    if case.state is CaseState.CLOSED:
        raise CaseRuleError(f"case {case.reference} is closed")


def _next_number(case: CaseView) -> int:
    held_or_booked = [m.number for m in case.meetings if m.state is not MeetingState.CANCELLED]
    booked = [m.number for m in case.meetings if m.state is MeetingState.BOOKED]
    if booked:
        return booked[0]  # moving the meeting that is booked, not adding one
    return max(held_or_booked, default=0) + 1


def _check_meeting_time(case: CaseView, number: int, start: dt.datetime, now: dt.datetime) -> None:
    if number < 1:
        raise CaseRuleError("meetings are numbered from 1")
    if start <= now:
        raise CaseRuleError(f"{start.astimezone(STOCKHOLM):%Y-%m-%d %H:%M} has already passed")
    day = local_date(start)
    if not is_working_day(day):
        reason = holiday_name(day) or ("lördag" if day.weekday() == 5 else "söndag")
        raise CaseRuleError(f"{day} is not a working day ({reason})")
    if number > 1:
        previous = case.live_meeting(number - 1)
        if previous is None:
            raise CaseRuleError(f"book meeting {number - 1} before meeting {number}")
        if start <= previous.start:
            raise CaseRuleError(f"meeting {number} must come after meeting {number - 1}")


def _cancel_upcoming(
    meetings: tuple[MeetingView, ...], now: dt.datetime
) -> tuple[MeetingView, ...]:
    return tuple(
        replace(m, state=MeetingState.CANCELLED, sequence=m.sequence + 1, cancelled_at=now)
        if m.state is MeetingState.BOOKED
        else m
        for m in meetings
    )


# --- deadlines of a case ------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    meeting: int
    start: dt.date  # what it runs from: known_on, or the previous meeting's day
    last_day: dt.date
    met: bool  # the meeting is booked or held on or before the last day


def deadlines(case: CaseView, rules: CaseRules) -> list[Deadline]:
    """The deadlines of the first and second meetings, as far as they are known."""
    first_period = (
        rules.sip_first_meeting if case.sip and rules.sip_first_meeting else rules.first_meeting
    )
    found = [_deadline(case, 1, case.known_on, first_period)]
    first = case.live_meeting(1)
    if first is not None:
        found.append(_deadline(case, 2, first.day, rules.second_meeting))
    return found


def _deadline(case: CaseView, number: int, start: dt.date, period: Period) -> Deadline:
    last_day = within(start, period)
    meeting = case.live_meeting(number)
    return Deadline(number, start, last_day, meeting is not None and meeting.day <= last_day)


def local_start(day: dt.date, at: dt.time) -> dt.datetime:
    """A meeting's start: `day` at local time `at`, as aware UTC, by the local-time rules of
    every booking (scheduler/bookings.py): a time in the spring-forward gap raises
    NonexistentLocalTime, one in the repeated autumn hour is its first pass."""
    return bookings.local_start(day, at)
