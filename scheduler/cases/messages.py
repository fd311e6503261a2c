"""The messages a report or a case calls for in its current state, each with its due moment.

Pure: `plan_report` and `plan_case` read a view and the municipality's case rules and return
every message the state calls for. The outbox side (`scheduler/cases/outbox.py`) inserts what is
new, updates what is pending, and cancels pending messages the view no longer calls for: booking
a meeting, closing a case or withdrawing consent cancels stale reminders because they drop out
of the plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from scheduler.calendar import local_date, local_moment
from scheduler.cases.rules import (
    Deadline,
    after,
    deadlines,
    overdue_day,
    period_label,
    period_text,
    reminder_day,
)
from scheduler.cases.views import CaseState, CaseView, MeetingState, ReportState, ReportView
from scheduler.spec import CaseRules

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
    plan += _guardian_notice(report)
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


def _guardian_notice(report: ReportView) -> list[PlannedMessage]:
    """A neutral notice to the guardians that the school makes a report (seed 004)."""
    guardians = tuple(
        Recipient("external", f"vardnadshavare-{i}", email, "guardian")
        for i, email in enumerate(report.guardians, start=1)
    )
    if not guardians:
        return []
    at = report.registered_at
    return [PlannedMessage("vardnadshavare", "anmalan-vardnadshavare", guardians, at, "send", {})]


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
