"""Case work as pure functions: deadlines, state machines and the messages each state calls for.

Nothing here touches the database or the clock: `now` is passed in. A report or a case is a
frozen view; a transition checks the rules and returns the next view (or raises CaseRuleError);
`plan_report` and `plan_case` return every message the current view calls for, each with its
due moment. The outbox side (scheduler/caseoutbox.py) inserts what is new, updates what is
pending, and cancels pending messages the view no longer calls for: booking a meeting, closing
a case or withdrawing consent cancels stale reminders because they drop out of the plan.

Deadlines (seed 004): the first meeting within two weeks of the case becoming known, the second
within two weeks of the first; a deadline on a non-working day moves to the previous working
day. Feedback to a reporter after two weeks: a waiting period, so it moves to the next one.
Lengths and kinds of days come from the municipality's profile (`cases:`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from core.errors import CaseRuleError as CaseRuleError  # re-exported
from scheduler import bookings
from scheduler.calendar import STOCKHOLM, local_date, local_moment
from scheduler.spec import CaseRules, Period
from scheduler.workdays import (
    Direction,
    add_working_days,
    holiday_name,
    is_working_day,
    period_end,
)

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


# --- views ---------------------------------------------------------------------------------------


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


# --- messages -----------------------------------------------------------------------------------

RecipientKind = Literal["person", "role", "external"]


@dataclass(frozen=True)
class Recipient:
    """Whom a message goes to: a person (by key), whoever holds a role, or an external address."""

    kind: RecipientKind
    key: str  # person key, role reference, or the external's slot ("vardnadshavare-1")
    email: str | None = None  # externals only
    external: Literal["guardian", "pupil"] | None = None


@dataclass(frozen=True)
class PlannedMessage:
    purpose: str
    template: str
    recipients: tuple[Recipient, ...]
    due_at: dt.datetime  # aware UTC
    # A message planned after its moment: "send" it at once, or "skip" it (a reminder that
    # something is coming up makes no sense once it has come).
    late: Literal["send", "skip"]
    facts: dict[str, object] = field(default_factory=dict)  # structured, for the template
    meeting: int | None = None  # the case meeting this message is about (invites)


def _at(day: dt.date, send_time: dt.time) -> dt.datetime:
    return local_moment(day, send_time)


def _round(purpose: str, rounds: int) -> str:
    # A reminder of a later consent round is a new message, not the cancelled one revived.
    return f"{purpose}-r{rounds}" if rounds else purpose


def plan_report(report: ReportView, rules: CaseRules, send_time: dt.time) -> list[PlannedMessage]:
    """Every message a report calls for in its current state."""
    reporter = (Recipient("person", report.reporter),)
    facts: dict[str, object] = {"urgent": report.urgent, "wants_feedback": report.wants_feedback}
    feedback_on = after(local_date(report.registered_at), rules.feedback_after)
    facts["feedback_on"] = feedback_on.isoformat() if report.wants_feedback else None
    facts["feedback_after"] = period_text(rules.feedback_after)
    at = report.registered_at
    plan = [
        PlannedMessage("registrerad", "anmalan-registrerad", reporter, at, "send", facts),
        PlannedMessage(
            "mottagning",
            "anmalan-mottagning",
            (Recipient("role", report.intake_role),),
            at,
            "send",
            facts,
        ),
    ]
    guardians = tuple(
        Recipient("external", f"vardnadshavare-{i}", email, "guardian")
        for i, email in enumerate(report.guardians, start=1)
    )
    if guardians:
        plan.append(
            PlannedMessage("vardnadshavare", "anmalan-vardnadshavare", guardians, at, "send", {})
        )
    if report.state is ReportState.RECEIVED and report.received_at is not None:
        plan.append(
            PlannedMessage(
                "mottagen", "anmalan-mottagen", reporter, report.received_at, "send", facts
            )
        )
    if report.wants_feedback:
        plan.append(
            PlannedMessage(
                "aterkoppling",
                "anmalan-aterkoppling",
                reporter,
                _at(feedback_on, send_time),
                "send",
                facts,
            )
        )
    return plan


def participants(case: CaseView) -> tuple[Recipient, ...]:
    """Always called (004): guardians, the child or pupil, the school, the family worker."""
    staff = [Recipient("person", case.owner)]
    staff += [Recipient("person", key) for key in case.staff if key != case.owner]
    if case.school_role is not None:
        staff.append(Recipient("role", case.school_role))
    externals = []
    counts = {"guardian": 0, "pupil": 0}
    for ext in case.externals:
        counts[ext.kind] += 1
        slot = f"{'vardnadshavare' if ext.kind == 'guardian' else 'elev'}-{counts[ext.kind]}"
        externals.append(Recipient("external", slot, ext.email, ext.kind))
    return (*staff, *externals)


def plan_case(
    case: CaseView, rules: CaseRules, send_time: dt.time, manager: str | None
) -> list[PlannedMessage]:
    """Every message a case calls for in its current state.

    `manager` is the role reference of the case owner's manager (from the profile), or None.
    """
    owner = (Recipient("person", case.owner),)
    plan = [
        PlannedMessage(
            "oppnat", "arende-oppnat", owner, case.opened_at, "send", _case_facts(case, rules)
        )
    ]
    plan += _meeting_messages(case, owner)
    if case.state in (CaseState.OPEN, CaseState.ACTIVE):
        for deadline in deadlines(case, rules):
            plan += _deadline_messages(case, deadline, rules, send_time, manager)
    if case.state is CaseState.ACTIVE:
        plan += _follow_up_messages(case, owner, send_time)
        plan += _sip_messages(case, rules, send_time, owner)
    if case.state is CaseState.WITHDRAWN and case.consent_withdrawn_at is not None:
        plan.append(
            PlannedMessage(
                _round("samtycke-aterkallat", case.rounds),
                "arende-aterkallat",
                owner,
                case.consent_withdrawn_at,
                "send",
            )
        )
    if case.state is CaseState.CLOSED and case.closed_at is not None:
        plan.append(PlannedMessage("avslutat", "arende-avslutat", owner, case.closed_at, "send"))
    return plan


def _case_facts(case: CaseView, rules: CaseRules) -> dict[str, object]:
    first = deadlines(case, rules)[0]
    return {
        "first_deadline": first.last_day.isoformat(),
        "known_on": case.known_on.isoformat(),
        "consent": case.state is CaseState.ACTIVE,
        "sip": case.sip,
    }


def _deadline_messages(
    case: CaseView, deadline: Deadline, rules: CaseRules, send_time: dt.time, manager: str | None
) -> list[PlannedMessage]:
    owner = (Recipient("person", case.owner),)
    n = deadline.meeting
    facts: dict[str, object] = {
        "meeting": n,
        "deadline": deadline.last_day.isoformat(),
        "runs_from": deadline.start.isoformat(),
        "consent": case.state is CaseState.ACTIVE,
    }
    plan: list[PlannedMessage] = []
    if case.live_meeting(n) is None:
        for before in rules.reminders_before:
            day = reminder_day(deadline.last_day, before)
            purpose = _round(f"frist{n}-{period_label(before)}", case.rounds)
            plan.append(
                PlannedMessage(
                    purpose, "arende-frist", owner, _at(day, send_time), "skip", dict(facts)
                )
            )
    if not deadline.met:
        due = _at(overdue_day(deadline.last_day, rules), send_time)
        purpose = _round(f"frist{n}-forsenad", case.rounds)
        plan.append(PlannedMessage(purpose, "arende-forsenad", owner, due, "send", dict(facts)))
        if manager is not None:
            plan.append(
                PlannedMessage(
                    f"{purpose}-chef",
                    "arende-forsenad-chef",
                    (Recipient("role", manager),),
                    due,
                    "send",
                    dict(facts),
                )
            )
    return plan


def _meeting_messages(case: CaseView, owner: tuple[Recipient, ...]) -> list[PlannedMessage]:
    plan: list[PlannedMessage] = []
    everyone = participants(case)
    for m in case.meetings:
        facts: dict[str, object] = {"meeting": m.number}
        version = f"-v{m.sequence}" if m.sequence else ""
        if m.state is MeetingState.BOOKED and case.state is CaseState.ACTIVE:
            plan.append(
                PlannedMessage(
                    f"kallelse-m{m.number}{version}",
                    "arende-kallelse",
                    everyone,
                    m.booked_at,
                    "send",
                    facts,
                    meeting=m.number,
                )
            )
        if m.state is MeetingState.CANCELLED and m.cancelled_at is not None:
            plan.append(
                PlannedMessage(
                    f"installt-m{m.number}{version}",
                    "arende-installt",
                    everyone,
                    m.cancelled_at,
                    "send",
                    facts,
                    meeting=m.number,
                )
            )
        if m.state is MeetingState.HELD and m.held_recorded_at is not None:
            plan.append(
                PlannedMessage(
                    f"minnesanteckningar-m{m.number}",
                    "arende-minnesanteckningar",
                    owner,
                    m.held_recorded_at,
                    "send",
                    {**facts, "held_on": m.day.isoformat()},
                )
            )
    return plan


def _follow_up_messages(
    case: CaseView, owner: tuple[Recipient, ...], send_time: dt.time
) -> list[PlannedMessage]:
    return [
        PlannedMessage(
            f"uppfoljning-{day.isoformat()}",
            "arende-uppfoljning",
            owner,
            _at(day, send_time),
            "skip",
            {"follow_up": day.isoformat()},
        )
        for day in case.follow_ups
    ]


def _sip_messages(
    case: CaseView, rules: CaseRules, send_time: dt.time, owner: tuple[Recipient, ...]
) -> list[PlannedMessage]:
    if not case.sip:
        return []
    plan = []
    for item in case.sip_items:
        day = reminder_day(item.due_on, rules.sip_reminder_before)
        plan.append(
            PlannedMessage(
                f"sip-{item.number}",
                "arende-sip",
                (Recipient("role", item.responsible),),
                _at(day, send_time),
                "skip",
                {"item": item.number, "due_on": item.due_on.isoformat()},
            )
        )
    if case.sip_follow_up is not None:
        day = reminder_day(case.sip_follow_up, rules.sip_reminder_before)
        responsible = tuple(dict.fromkeys(Recipient("role", i.responsible) for i in case.sip_items))
        plan.append(
            PlannedMessage(
                f"sip-uppfoljning-{case.sip_follow_up.isoformat()}",
                "arende-sip-uppfoljning",
                (*owner, *responsible),
                _at(day, send_time),
                "skip",
                {"follow_up": case.sip_follow_up.isoformat(), "items": len(case.sip_items)},
            )
        )
    return plan


def is_working(day: dt.date) -> bool:
    return is_working_day(day)


def local_start(day: dt.date, at: dt.time) -> dt.datetime:
    """A meeting's start: `day` at local time `at`, as aware UTC, by the local-time rules of
    every booking (scheduler/bookings.py): a time in the spring-forward gap raises
    NonexistentLocalTime, one in the repeated autumn hour is its first pass."""
    return bookings.local_start(day, at)
