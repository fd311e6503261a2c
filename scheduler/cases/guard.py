"""The send-time check the worker runs before a case or report message leaves."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import local_date
from scheduler.cases.handover import LEAVES, handed_over, still_participant
from scheduler.cases.messages import plan_case, plan_report
from scheduler.cases.recipients import recipient_problem
from scheduler.cases.subjects import (
    SERIES,
    Subject,
    case_subject,
    case_view,
    manager_of,
    report_subject,
    report_view,
    rules_of,
    send_time_of,
)
from scheduler.cases.views import REPORT

log = logging.getLogger("samverkan.cases")


def send_time_refusal(
    session: Session, row: models.Notification, as_of: dt.datetime | None = None
) -> str | None:
    """Why this case or report message must not be sent now, or None to send it.

    Defence in depth: nothing goes to an external recipient of a subject that concerns
    suspected violence or abuse, however the row got here; and a message the subject's
    current state no longer calls for (the case was closed, consent withdrawn) is not sent.
    """
    if row.routine_key not in SERIES:
        return None
    municipality = session.get_one(models.Municipality, row.municipality_id)
    planned = _planned_purposes(session, municipality, row)
    if isinstance(planned, str):
        return planned
    subject, purposes = planned
    problem = (
        recipient_problem(session, municipality, row.person_id, row.recipient_email)
        if subject.suspected_abuse
        else None
    )
    if problem is not None:
        log.warning(
            "refused at send time: a message of %s, which concerns suspected violence or "
            "sexual abuse, to %s",
            subject.label,
            problem,
            extra={"action": "deliver.confidentiality_refused", "notification": row.id},
        )
        return "refused: the subject concerns suspected violence or abuse (confidentiality)"
    return _no_longer_called_for(session, municipality, subject, row, purposes, as_of)


def _no_longer_called_for(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    row: models.Notification,
    purposes: set[str],
    as_of: dt.datetime | None,
) -> str | None:
    """Why the subject's state no longer calls for the row (None: it does). A hand-over row
    (scheduler/cases/handover.py) is called for while its invitation is; a CANCEL to one who
    leaves, only while they are still not a participant today."""
    if row.purpose in purposes:
        return None
    handed = handed_over(row.purpose)
    if handed is None or handed[0] not in purposes:
        return "no longer applies: the report or case changed since it was planned"
    invitation, kind = handed
    if kind != LEAVES:
        return None
    case = _find(session, models.Case, row)
    assert case is not None  # found by _planned_purposes
    view = case_view(session, case)
    plan = plan_case(view, rules_of(municipality), send_time_of(municipality), None)
    message = next(m for m in plan if m.purpose == invitation)
    moment = as_of or row.due_at
    on = local_date(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    if still_participant(session, municipality, subject, view, message, row.recipient_email, on):
        return "no longer applies: the recipient is a participant of the meeting again"
    return None


def _planned_purposes(
    session: Session, municipality: models.Municipality, row: models.Notification
) -> tuple[Subject, set[str]] | str:
    """The row's subject and the purposes its current state calls for, or why it has none.

    Only the purposes are compared, so the plan is computed without resolving recipients.
    """
    rules = rules_of(municipality)
    send_time = send_time_of(municipality)
    if row.routine_key == REPORT:
        report = _find(session, models.Report, row)
        if report is None:
            return "its report no longer exists"
        plan = plan_report(report_view(session, report, rules), rules, send_time)
        return report_subject(report), {m.purpose for m in plan}
    case = _find(session, models.Case, row)
    if case is None:
        return "its case no longer exists"
    manager = manager_of(rules, case.owner_role)
    plan = plan_case(case_view(session, case), rules, send_time, manager)
    return case_subject(session, case), {m.purpose for m in plan}


def _find(session: Session, model: Any, row: models.Notification) -> Any:
    return session.scalar(
        select(model).where(
            model.municipality_id == row.municipality_id, model.reference == row.occurrence
        )
    )
