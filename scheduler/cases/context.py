"""What a case or report message's template may know: structured fields only, never more
about the child than the neutral reference (docs/template-context.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases.messages import PlannedMessage
from scheduler.cases.recipients import Resolved
from scheduler.cases.rules import deadlines
from scheduler.cases.subjects import Subject, domain_of
from scheduler.cases.views import CASE, REPORT, CaseView, MeetingState, MeetingView
from scheduler.identity import event_uid
from scheduler.municipality import MunicipalitySettings
from scheduler.places import place_fields
from scheduler.spec import CaseRules


def base_context(municipality: models.Municipality, subject: Subject) -> dict[str, Any]:
    """What every case or report message knows: never more than the neutral reference."""
    names = {REPORT: "Orosanmälan", CASE: "Samverkansmöte i ärende"}
    return {
        "municipality": municipality.name,
        "sender": {"name": municipality.sender_name, "email": municipality.sender_email},
        "routine": {
            "key": subject.series,
            "name": names[subject.series],
            "kind": subject.series,
            "description": None,
        },
        "occurrence": {"key": subject.reference, "date": None},
        "reference": subject.label,
        "owners": [],
        "reply_to": None,
        "attachments": [],
        "attachment_files": [],
    }


def meeting_context(
    municipality: models.Municipality,
    subject: Subject,
    meeting: MeetingView,
    rules: CaseRules,
    organizer: models.Person,
) -> dict[str, Any]:
    cancelled = meeting.state is MeetingState.CANCELLED
    return {
        "number": meeting.number,
        "start": meeting.start.astimezone(STOCKHOLM).isoformat(),
        "end": meeting.end.astimezone(STOCKHOLM).isoformat(),
        # meeting.location holds the key of one of the profile's places
        **place_fields(MunicipalitySettings.of(municipality).places, meeting.location),
        "agenda": list(rules.agenda),
        "sequence": meeting.sequence,
        "uid": event_uid(
            municipality.key,
            subject.series,
            f"{subject.reference}-m{meeting.number}",
            domain_of(municipality),
        ),
        "organizer": {"name": organizer.name, "email": organizer.email},
        "method": "CANCEL" if cancelled else "REQUEST",
    }


def report_facts(
    session: Session, municipality: models.Municipality, report: models.Report
) -> dict[str, Any]:
    intake = session.get_one(models.Unit, report.intake_unit_id)
    unit = session.get_one(models.Unit, report.reporting_unit_id)
    reporter = session.get_one(models.Person, report.reporter_id)
    receiver = session.get(models.Person, report.received_by_id) if report.received_by_id else None
    return {
        "reference": report.reference,
        "unit": unit.name,
        "reporter": reporter.name,
        "intake": {
            "name": intake.name,
            "phone": intake.phone or MunicipalitySettings.of(municipality).intake_phone,
        },
        "registered_on": local_date(report.registered_at).isoformat(),
        "received": (
            {
                "name": receiver.name,
                "on": local_date(report.received_at).isoformat(),
            }
            if receiver is not None and report.received_at is not None
            else None
        ),
    }


def case_facts(
    session: Session,
    municipality: models.Municipality,
    case: models.Case,
    view: CaseView,
    rules: CaseRules,
) -> dict[str, Any]:
    """The case's part of the base context, and who to reply to (its owner)."""
    owner = session.get_one(models.Person, case.owner_id)
    role_name = MunicipalitySettings.of(municipality).role_names.get(
        case.owner_role, case.owner_role
    )
    return {
        "case": {
            "reference": case.reference,
            "owner": {"name": owner.name, "email": owner.email, "role": role_name},
            "known_on": case.known_on.isoformat(),
            "state": case.state,
            "sip": case.sip,
            "adult_pupil": case.adult_pupil,
            "agenda": list(rules.agenda),
            "deadlines": [
                {"meeting": d.meeting, "last_day": d.last_day.isoformat(), "met": d.met}
                for d in deadlines(view, rules)
            ],
        },
        "owners": [{"name": owner.name, "role": role_name}],
        "reply_to": {"name": owner.name, "email": owner.email, "role": role_name},
    }


def message_context(
    base: dict[str, Any],
    message: PlannedMessage,
    found: Resolved,
    meetings: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """One recipient's context of one message: the base, the message's facts, the recipient."""
    context = dict(base)
    context.update(
        purpose=message.purpose,
        facts=dict(message.facts),
        due={"date": local_date(message.due_at).isoformat()},
        recipient={
            "name": found.name,
            "roles": list(found.role_names),
            "units": [{"name": n, "kind": k} for n, k in found.units],
            "external": found.external is not None,
        },
        meeting=meetings.get(message.meeting) if message.meeting is not None else None,
    )
    return context
