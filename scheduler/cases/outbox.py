"""Case work meets the outbox: planned messages into rows, written through its one writer.

`insert_case_rows` and `sync_rows` are the only ways case and report notifications are planned
(both write through the outbox's owner, `scheduler/outbox`). They refuse
(ConfidentialityError, logged without personal data) any message to an external recipient of a
report or case that concerns suspected violence or sexual abuse, and any context that holds
something shaped like a personal identity number. The worker asks `scheduler/cases/guard.py`
the same again when the message is about to be sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

import models
from core.errors import ConfidentialityError
from scheduler import outbox
from scheduler.calendar import local_date
from scheduler.cases.context import (
    base_context,
    case_facts,
    meeting_context,
    message_context,
    report_facts,
)
from scheduler.cases.handover import changes as handover_changes
from scheduler.cases.messages import PlannedMessage, plan_case, plan_report
from scheduler.cases.recipients import (
    Resolved,
    Resolver,
    invited,
    recipient_problem,
    withheld,
)
from scheduler.cases.subjects import (
    Subject,
    case_subject,
    case_view,
    domain_of,
    manager_of,
    report_subject,
    report_view,
    rules_of,
    send_time_of,
)
from scheduler.cases.views import CaseState, CaseView, MeetingState
from scheduler.identity import idempotency_key, message_id_for
from scheduler.outbox import SyncResult as SyncResult  # re-exported for case work
from scheduler.privacy import refuse_identity_number, refuse_in_context

log = logging.getLogger("samverkan.cases")


@dataclass(frozen=True)
class CaseRow:
    key: str
    purpose: str
    template: str
    context: dict[str, Any]
    person_id: int | None
    roles: tuple[str, ...]
    email: str
    name: str
    due_at: dt.datetime
    late: str
    message_id: str
    external: str | None = None  # guardian or pupil


def build_rows(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    plan: list[PlannedMessage],
    base: dict[str, Any],
    meetings: dict[int, dict[str, Any]],
) -> list[CaseRow]:
    """One row per message and recipient (a person reached twice by one message gets one)."""
    resolver = Resolver(session, municipality)
    domain = domain_of(municipality)
    rows: list[CaseRow] = []
    for message in plan:
        due_day = local_date(message.due_at)
        seen: set[str] = set()
        resolved = [
            found
            for recipient in message.recipients
            for found in resolver.resolve(recipient, due_day)
        ]
        meeting = meetings.get(message.meeting) if message.meeting is not None else None
        if meeting is not None and meeting.get("method") == "CANCEL":
            # Called off: to whoever the record shows holding it, not to today's holders.
            resolved = [
                found
                for found in invited(session, municipality, str(meeting["uid"]), resolved)
                if not _unsafe_invited(session, municipality, subject, message, found)
            ]
        for found in resolved:
            address = found.email.lower()
            if address in seen or withheld(session, municipality, subject, message, found):
                continue
            seen.add(address)
            context = message_context(base, message, found, meetings)
            rows.append(_row(municipality.key, subject, message, found, context, domain))
    return rows


def _unsafe_invited(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    message: PlannedMessage,
    found: Resolved,
) -> bool:
    """True for someone in the record who is not staff, when the subject concerns suspected
    violence or abuse: the CANCEL is withheld from them as every other message is (nothing
    to an external recipient), rather than refusing the change that calls the meeting off."""
    if not subject.suspected_abuse or found.person_id is not None:
        return False
    if recipient_problem(session, municipality, found.person_id, found.email) is None:
        return False
    log.warning(
        "withheld a %s message of %s from an external recipient: it concerns suspected "
        "violence or sexual abuse",
        message.purpose,
        subject.label,
        extra={"action": "case.confidentiality_withheld", "reference": subject.reference},
    )
    return True


def _row(
    municipality_key: str,
    subject: Subject,
    message: PlannedMessage,
    found: Resolved,
    context: dict[str, Any],
    domain: str,
) -> CaseRow:
    key = idempotency_key(
        municipality_key, subject.series, subject.reference, message.purpose, found.slot
    )
    return CaseRow(
        key=key,
        purpose=message.purpose,
        template=message.template,
        context=context,
        person_id=found.person_id,
        roles=found.refs,
        email=found.email,
        name=found.name,
        due_at=message.due_at,
        late=message.late,
        message_id=message_id_for(key, domain),
        external=found.external,
    )


# --- the one insert -----------------------------------------------------------------------------


def refuse_external(subject: Subject, kind: str, what: str) -> None:
    """Raise (and log, without personal data) when `subject` concerns suspected violence or
    sexual abuse: then nothing may go to a guardian or any other external recipient."""
    if not subject.suspected_abuse:
        return
    log.warning(
        "refused a %s message (%s) to an external recipient: %s concerns suspected "
        "violence or sexual abuse; nothing was changed",
        kind,
        what,
        subject.label,
        extra={"action": "case.confidentiality_refused", "reference": subject.reference},
    )
    raise ConfidentialityError(
        f"{subject.label} concerns suspected violence or sexual abuse: no message may be sent "
        f"to a guardian or other external recipient ({what} was asked for); nothing was changed"
    )


def insert_case_rows(
    session: Session, subject: Subject, now: dt.datetime, rows: list[CaseRow]
) -> int:
    """Insert case or report notifications (through the outbox's one insert).

    Refuses the whole batch (ConfidentialityError) when any row would go to an external
    recipient of a subject that concerns suspected violence or sexual abuse, or when any
    context or address holds something shaped like a personal identity number.
    """
    municipality = session.get_one(models.Municipality, subject.municipality_id)
    for row in rows:
        _admit(session, municipality, subject, row)
    return len(outbox.insert(session, [_wanted(subject, row) for row in rows], now))


def _admit(
    session: Session, municipality: models.Municipality, subject: Subject, row: CaseRow
) -> None:
    """The checks a case or report row passes before it may become pending."""
    if subject.suspected_abuse and recipient_problem(
        session, municipality, row.person_id, row.email
    ):
        refuse_external(subject, row.external or "staff", row.purpose)
    refuse_in_context(row.context)
    refuse_identity_number(row.email, "a recipient's address")


def _wanted(subject: Subject, row: CaseRow) -> outbox.Wanted:
    return outbox.Wanted(
        key=row.key,
        municipality_id=subject.municipality_id,
        routine_key=subject.series,
        occurrence=subject.reference,
        purpose=row.purpose,
        message_id=row.message_id,
        template=row.template,
        context=row.context,
        person_id=row.person_id,
        roles=tuple(row.roles),
        recipient_email=row.email,
        recipient_name=row.name,
        due_at=row.due_at,
        skip_if_late=row.late == "skip",
    )


def sync_rows(
    session: Session, subject: Subject, rows: list[CaseRow], now: dt.datetime, reason: str
) -> SyncResult:
    """Bring the subject's outbox rows in line with `rows` (its plan for the current state).

    The outbox's one sync, with the subject's rows as its scope: new keys are inserted (a
    reminder whose moment has passed is not); pending rows still wanted are updated; a
    cancelled row wanted again is revived (same key and Message-ID); pending rows no longer
    wanted are cancelled with `reason`. Rows sent, in a retry, or handed to a worker are never
    touched. Every row that is inserted or revived passes the same checks as an insert.
    """
    for row in rows:
        refuse_in_context(row.context)  # updated rows too: the context is what gets rendered
    by_key = {row.key: row for row in rows}
    municipality = session.get_one(models.Municipality, subject.municipality_id)
    n = models.Notification
    scope = and_(
        n.municipality_id == subject.municipality_id,
        n.routine_key == subject.series,
        n.occurrence == subject.reference,
    )
    return outbox.sync(
        session,
        [_wanted(subject, row) for row in rows],
        scope,
        now,
        reason,
        admit=lambda wanted: _admit(session, municipality, subject, by_key[wanted.key]),
    )


def cancel_unsafe(session: Session, subject: Subject, now: dt.datetime, reason: str) -> int:
    """Cancel every row of `subject` still to be sent (retries included) whose recipient is not
    staff. A row already handed to a worker is refused by the send-time check instead."""
    municipality = session.get_one(models.Municipality, subject.municipality_id)
    cancelled = 0
    for notification in session.scalars(
        select(models.Notification).where(
            models.Notification.municipality_id == subject.municipality_id,
            models.Notification.routine_key == subject.series,
            models.Notification.occurrence == subject.reference,
            models.Notification.status == models.Status.PENDING,
        )
    ):
        problem = recipient_problem(
            session, municipality, notification.person_id, notification.recipient_email
        )
        if problem is not None:
            outbox.cancel(notification, now, reason)
            cancelled += 1
    return cancelled


# --- planning a subject, as a whole -------------------------------------------------------------


def report_plan(session: Session, report: models.Report) -> tuple[Subject, list[CaseRow]]:
    municipality = session.get_one(models.Municipality, report.municipality_id)
    rules = rules_of(municipality)
    view = report_view(session, report, rules)
    subject = report_subject(report)
    plan = plan_report(view, rules, send_time_of(municipality))
    base = base_context(municipality, subject)
    base["report"] = report_facts(session, municipality, report)
    return subject, build_rows(session, municipality, subject, plan, base, {})


def case_plan(
    session: Session, case: models.Case, now: dt.datetime | None = None
) -> tuple[Subject, list[CaseRow]]:
    """Every row the case's current state calls for; with `now`, also the hand-over of its
    meetings' invitations already out (scheduler/cases/handover.py)."""
    subject, rows, handover = _case_rows(session, case, now)
    return subject, _unique(rows + handover)


def _case_rows(
    session: Session, case: models.Case, now: dt.datetime | None
) -> tuple[Subject, list[CaseRow], list[CaseRow]]:
    """The case's planned rows, and (with `now`) its hand-over rows."""
    municipality = session.get_one(models.Municipality, case.municipality_id)
    rules = rules_of(municipality)
    view = case_view(session, case)
    subject = case_subject(session, case)
    plan = plan_case(view, rules, send_time_of(municipality), manager_of(rules, case.owner_role))
    base = base_context(municipality, subject)
    base.update(case_facts(session, municipality, case, view, rules))
    owner = session.get_one(models.Person, case.owner_id)
    meetings = {
        m.number: meeting_context(municipality, subject, m, rules, owner) for m in view.meetings
    }
    rows = build_rows(session, municipality, subject, plan, base, meetings)
    handover = (
        []
        if now is None
        else _handover_rows(session, municipality, subject, view, plan, base, meetings, now)
    )
    return subject, rows, handover


def _handover_rows(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    view: CaseView,
    plan: list[PlannedMessage],
    base: dict[str, Any],
    meetings: dict[int, dict[str, Any]],
    now: dt.datetime,
) -> list[CaseRow]:
    domain = domain_of(municipality)
    rows = []
    for change in handover_changes(session, municipality, subject, view, plan, meetings, now):
        message, found = change.message, change.recipient
        if change.cancel and withheld(session, municipality, subject, message, found):
            continue
        context = message_context(base, message, found, meetings)
        if change.cancel:
            context["meeting"] = {**context["meeting"], "method": "CANCEL"}
        rows.append(_row(municipality.key, subject, message, found, context, domain))
    return rows


def _unique(rows: list[CaseRow]) -> list[CaseRow]:
    """One row per key (a hand-over REQUEST can be the plan's own invitation row)."""
    unique: dict[str, CaseRow] = {}
    for row in rows:
        unique.setdefault(row.key, row)
    return list(unique.values())


HANDED_OVER = "a participant of the case meeting changed"


def resync_handovers(session: Session, municipality_id: int, now: dt.datetime) -> int:
    """Re-sync every active case with a booked meeting still ahead whose participants changed
    since its invitation went out (the re-plan at load, at a routine command and nightly asks
    this, so a substitute's period starting on a later day is seen that day). Return the rows
    created. A case that cannot be re-synced (a confidentiality refusal) is logged and left."""
    created = 0
    # Ids first: DISTINCT over a case's JSON columns is not defined on PostgreSQL.
    ids = session.scalars(
        select(models.Case.id)
        .join(models.CaseMeeting, models.CaseMeeting.case_id == models.Case.id)
        .where(
            models.Case.municipality_id == municipality_id,
            models.Case.state == CaseState.ACTIVE.value,
            models.CaseMeeting.state == MeetingState.BOOKED.value,
            models.CaseMeeting.starts_at > now,
        )
        .distinct()
        .order_by(models.Case.id)
    ).all()
    for case in (session.get_one(models.Case, i) for i in ids):
        subject, rows, handover = _case_rows(session, case, now)
        if not handover:
            continue  # nothing changed hands (or all of it is sent): the rows stand
        try:
            with session.begin_nested():
                wanted = _unique(rows + handover)
                synced = sync_rows(session, subject, wanted, now, HANDED_OVER)
            created += synced.created
            if not synced.created + synced.revived:
                continue
            log.info(
                "%s: a meeting's participants changed hands; %d message(s) planned",
                subject.label,
                synced.created + synced.revived,
                extra={"action": "case.handover", "reference": subject.reference},
            )
        except ConfidentialityError:
            log.warning(
                "%s was not re-synced: refused by the confidentiality rule",
                subject.label,
                extra={"action": "case.handover_refused", "reference": subject.reference},
            )
    return created
