"""A case's state change, written once: the view back into the rows, the outbox brought in line
with the new state's plan, and the audit (with the reminders the change cancelled)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

import models
from scheduler.cases.outbox import SyncResult, case_plan, sync_rows
from scheduler.cases.subjects import case_subject
from scheduler.cases.views import CaseView
from service.desk import Desk


def apply_view(case: models.Case, view: CaseView) -> None:
    """Write a view's state back to the rows (SIP items are added by their own command)."""
    case.state = view.state.value
    case.rounds = view.rounds
    case.consent_recorded_at = view.consent_recorded_at
    case.consent_withdrawn_at = view.consent_withdrawn_at
    case.closed_at = view.closed_at
    case.follow_ups = [d.isoformat() for d in view.follow_ups]
    case.sip_follow_up = view.sip_follow_up
    existing = {m.number: m for m in case.meetings}
    for m in view.meetings:
        row = existing.get(m.number)
        if row is None:
            row = models.CaseMeeting(number=m.number)
            case.meetings.append(row)
        row.state = m.state.value
        row.starts_at = m.start
        row.ends_at = m.end
        row.location = m.location
        row.sequence = m.sequence
        row.booked_at = m.booked_at
        row.held_on = m.held_on
        row.held_recorded_at = m.held_recorded_at
        row.cancelled_at = m.cancelled_at


def sync_case(session: Session, case: models.Case, now: dt.datetime, reason: str) -> SyncResult:
    """Bring the case's outbox rows in line with its current state's plan."""
    session.flush()
    session.expire(case, ["meetings", "sip_items"])
    subject, rows = case_plan(session, case, now)
    return sync_rows(session, subject, rows, now, reason)


def change_case(
    desk: Desk, case: models.Case, view: CaseView, action: str, reason: str, **detail: Any
) -> SyncResult:
    """Apply `view` to `case`, re-sync its messages, and audit `action` with `detail`."""
    apply_view(case, view)
    result = sync_case(desk.session, case, desk.now, reason)
    subject = case_subject(desk.session, case)
    desk.audit(action, subject, **detail)
    desk.audit_cancelled(subject, result, reason)
    return result
