"""Case work meets the outbox: views from the database, planned messages into rows, and the
send-time check the worker runs before a case or report message leaves.

`insert_case_rows` and `sync_rows` are the only ways case and report notifications are planned
(both write through the outbox's owner, `scheduler/outbox`). They refuse
(ConfidentialityError, logged without personal data) any message to an external recipient of a
report or case that concerns suspected violence or sexual abuse, and any context that holds
something shaped like a personal identity number. `send_time_refusal` checks the same again
when the message is about to be sent, and that the message still applies.
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
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import (
    CASE,
    REPORT,
    CaseState,
    CaseView,
    External,
    MeetingState,
    MeetingView,
    PlannedMessage,
    Recipient,
    ReportState,
    ReportView,
    SipItemView,
    deadlines,
    plan_case,
    plan_report,
)
from scheduler.confidential import StaffRule
from scheduler.directory import RoleDirectory, load_directory
from scheduler.identity import event_uid, idempotency_key, message_id_for, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.outbox import SyncResult as SyncResult  # re-exported for case work
from scheduler.places import place_fields
from scheduler.privacy import refuse_identity_number, refuse_in_context
from scheduler.spec import CaseRules, RoleRef, UnitKind

log = logging.getLogger("samverkan.cases")

SERIES = (REPORT, CASE)
LABELS = {REPORT: "Anmälan", CASE: "Ärende"}
EXTERNAL_NAMES = {"guardian": "Vårdnadshavare", "pupil": "Elev"}


@dataclass(frozen=True)
class Subject:
    """What the outbox needs to know of a report or case to guard its messages."""

    municipality_id: int
    series: str
    reference: str
    suspected_abuse: bool

    @property
    def label(self) -> str:
        return f"{LABELS[self.series]} {self.reference}"


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


def rules_of(municipality: models.Municipality) -> CaseRules:
    return MunicipalitySettings.of(municipality).cases


def send_time_of(municipality: models.Municipality) -> dt.time:
    return MunicipalitySettings.of(municipality).send_time


def domain_of(municipality: models.Municipality) -> str:
    return sender_domain(municipality.sender_email)


def staff_rule_of(municipality: models.Municipality) -> StaffRule:
    domains = MunicipalitySettings.of(municipality).staff_domains
    return StaffRule(
        domains=frozenset(d.lower() for d in domains),
        family_roles=frozenset(rules_of(municipality).family_roles),
    )


def recipient_problem(
    session: Session, municipality: models.Municipality, person_id: int | None, email: str
) -> str | None:
    """Why this recipient is not the municipality's staff (scheduler/confidential.py), or None.

    Asked of every recipient of a subject that concerns suspected violence or abuse, when its
    message is planned and again when it is sent, whatever route made them a recipient.
    """
    roles: list[str] = []
    if person_id is not None:
        person = session.get(models.Person, person_id)
        if person is None:
            return "a person no longer in the profile"
        roles = [a.role for a in person.roles]
    return staff_rule_of(municipality).problem(email, roles, person_id is not None)


# --- views from rows ----------------------------------------------------------------------------


def _person_key(session: Session, person_id: int | None) -> str | None:
    if person_id is None:
        return None
    return session.get_one(models.Person, person_id).key


def report_view(session: Session, report: models.Report, rules: CaseRules) -> ReportView:
    intake = session.get_one(models.Unit, report.intake_unit_id)
    return ReportView(
        reference=report.reference,
        state=ReportState(report.state),
        registered_at=report.registered_at,
        reporter=session.get_one(models.Person, report.reporter_id).key,
        intake_role=f"{rules.intake_role}@{intake.key}",
        acute=report.acute,
        suspected_abuse=report.suspected_abuse,
        wants_feedback=report.wants_feedback,
        guardians=tuple(report.guardian_emails),
        received_at=report.received_at,
        received_by=_person_key(session, report.received_by_id),
    )


def case_view(session: Session, case: models.Case) -> CaseView:
    school = session.get(models.Unit, case.school_unit_id) if case.school_unit_id else None
    family_worker = _person_key(session, case.family_worker_id)
    staff = tuple(k for k in (family_worker, *case.staff) if k is not None)
    report = session.get(models.Report, case.report_id) if case.report_id else None
    return CaseView(
        reference=case.reference,
        state=CaseState(case.state),
        known_on=case.known_on,
        opened_at=case.opened_at,
        owner=session.get_one(models.Person, case.owner_id).key,
        owner_role=case.owner_role,
        staff=tuple(dict.fromkeys(staff)),
        school_role=f"rektor@{school.key}" if school is not None else None,
        externals=tuple(External(e["kind"], e["email"]) for e in case.externals),  # type: ignore[arg-type]
        adult_pupil=case.adult_pupil,
        sip=case.sip,
        suspected_abuse=bool(report and report.suspected_abuse),
        rounds=case.rounds,
        consent_recorded_at=case.consent_recorded_at,
        consent_withdrawn_at=case.consent_withdrawn_at,
        meetings=tuple(
            MeetingView(
                number=m.number,
                state=MeetingState(m.state),
                start=m.starts_at,
                end=m.ends_at,
                location=m.location,
                sequence=m.sequence,
                booked_at=m.booked_at,
                held_on=m.held_on,
                held_recorded_at=m.held_recorded_at,
                cancelled_at=m.cancelled_at,
            )
            for m in case.meetings
        ),
        follow_ups=tuple(dt.date.fromisoformat(d) for d in case.follow_ups),
        sip_items=tuple(SipItemView(i.number, i.responsible, i.due_on) for i in case.sip_items),
        sip_follow_up=case.sip_follow_up,
        closed_at=case.closed_at,
    )


def manager_of(rules: CaseRules, owner_role: str) -> str | None:
    return rules.managers.get(owner_role)


# --- planned messages → rows --------------------------------------------------------------------


class _Resolver:
    """Recipients → (person id, name, e-mail, role refs, role names, units) on a given day."""

    def __init__(self, session: Session, municipality: models.Municipality) -> None:
        self.session = session
        self.municipality = municipality
        self.role_names: dict[str, str] = dict(MunicipalitySettings.of(municipality).role_names)
        self._directory: RoleDirectory | None = None

    @property
    def directory(self) -> RoleDirectory:
        if self._directory is None:
            self._directory = load_directory(self.session, self.municipality.id, self.role_names)
        return self._directory

    def person(self, key: str) -> models.Person | None:
        return self.session.scalar(
            select(models.Person).where(
                models.Person.municipality_id == self.municipality.id, models.Person.key == key
            )
        )

    def resolve(self, recipient: Recipient, on: dt.date) -> list[dict[str, Any]]:
        if recipient.kind == "external":
            assert recipient.email is not None and recipient.external is not None
            name = EXTERNAL_NAMES[recipient.external]
            return [
                {
                    "slot": recipient.key,
                    "person_id": None,
                    "name": name,
                    "email": recipient.email,
                    "refs": (),
                    "role_names": [name],
                    "units": [],
                    "external": recipient.external,
                }
            ]
        if recipient.kind == "person":
            person = self.person(recipient.key)
            if person is None or not person.active:
                log.warning("case recipient %s is not an active person; skipped", recipient.key)
                return []
            names = sorted({self.role_names.get(r.role, r.role) for r in person.roles})
            return [
                {
                    "slot": person.key,
                    "person_id": person.id,
                    "name": person.name,
                    "email": person.email,
                    "refs": (),
                    "role_names": names,
                    "units": [],
                    "external": None,
                }
            ]
        holders = self.directory.resolve([recipient.key], on)
        if not holders:
            log.warning("nobody holds %s on %s; message not planned", recipient.key, on)
        return [
            {
                "slot": h.person_key,
                "person_id": h.person_id,
                "name": h.name,
                "email": h.email,
                "refs": h.roles,
                "role_names": list(h.role_names),
                "units": [{"name": n, "kind": k} for n, k in h.units],
                "external": None,
            }
            for h in holders
        ]


def build_rows(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    plan: list[PlannedMessage],
    base: dict[str, Any],
    meetings: dict[int, dict[str, Any]],
) -> list[CaseRow]:
    """One row per message and recipient (a person reached twice by one message gets one)."""
    resolver = _Resolver(session, municipality)
    domain = domain_of(municipality)
    rows: list[CaseRow] = []
    for message in plan:
        due_day = local_date(message.due_at)
        seen: set[str] = set()
        for recipient in message.recipients:
            for found in resolver.resolve(recipient, due_day):
                address = found["email"].lower()
                if address in seen or _withheld(session, municipality, subject, message, found):
                    continue
                seen.add(address)
                rows.append(_row(municipality, subject, message, found, base, meetings, domain))
    return rows


def _withheld(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    message: PlannedMessage,
    found: dict[str, Any],
) -> bool:
    """True for a person reached by a role, escalation or SIP item who is not staff, when the
    subject concerns suspected abuse: that message is not planned for them.

    External participants (typed for the case) are not withheld here but refused by the
    insert, so that asking for one is an error the person asking sees.
    """
    if not subject.suspected_abuse or found["person_id"] is None:
        return False
    problem = recipient_problem(session, municipality, found["person_id"], found["email"])
    if problem is None:
        return False
    log.warning(
        "withheld a %s message of %s from %s: it concerns suspected violence or sexual abuse",
        message.purpose,
        subject.label,
        problem,
        extra={"action": "case.confidentiality_withheld", "reference": subject.reference},
    )
    return True


def _row(
    municipality: models.Municipality,
    subject: Subject,
    message: PlannedMessage,
    found: dict[str, Any],
    base: dict[str, Any],
    meetings: dict[int, dict[str, Any]],
    domain: str,
) -> CaseRow:
    key = idempotency_key(
        municipality.key, subject.series, subject.reference, message.purpose, found["slot"]
    )
    context = dict(base)
    context.update(
        purpose=message.purpose,
        facts=dict(message.facts),
        due={"date": local_date(message.due_at).isoformat()},
        recipient={
            "name": found["name"],
            "roles": found["role_names"],
            "units": found["units"],
            "external": found["external"] is not None,
        },
        meeting=meetings.get(message.meeting) if message.meeting is not None else None,
    )
    return CaseRow(
        key=key,
        purpose=message.purpose,
        template=message.template,
        context=context,
        person_id=found["person_id"],
        roles=tuple(found["refs"]),
        email=found["email"],
        name=found["name"],
        due_at=message.due_at,
        late=message.late,
        message_id=message_id_for(key, domain),
        external=found["external"],
    )


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


def report_subject(report: models.Report) -> Subject:
    return Subject(report.municipality_id, REPORT, report.reference, report.suspected_abuse)


def case_subject(session: Session, case: models.Case) -> Subject:
    report = session.get(models.Report, case.report_id) if case.report_id else None
    return Subject(
        case.municipality_id, CASE, case.reference, bool(report and report.suspected_abuse)
    )


def report_plan(session: Session, report: models.Report) -> tuple[Subject, list[CaseRow]]:
    municipality = session.get_one(models.Municipality, report.municipality_id)
    rules = rules_of(municipality)
    view = report_view(session, report, rules)
    subject = report_subject(report)
    plan = plan_report(view, rules, send_time_of(municipality))
    base = base_context(municipality, subject)
    base["report"] = report_facts(session, municipality, report)
    return subject, build_rows(session, municipality, subject, plan, base, {})


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


def case_plan(session: Session, case: models.Case) -> tuple[Subject, list[CaseRow]]:
    municipality = session.get_one(models.Municipality, case.municipality_id)
    rules = rules_of(municipality)
    view = case_view(session, case)
    subject = case_subject(session, case)
    plan = plan_case(view, rules, send_time_of(municipality), manager_of(rules, case.owner_role))
    owner = session.get_one(models.Person, case.owner_id)
    base = base_context(municipality, subject)
    role_name = MunicipalitySettings.of(municipality).role_names.get(
        case.owner_role, case.owner_role
    )
    base["case"] = {
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
    }
    base["owners"] = [{"name": owner.name, "role": role_name}]
    base["reply_to"] = {"name": owner.name, "email": owner.email, "role": role_name}
    meetings = {
        m.number: meeting_context(municipality, subject, m, rules, owner) for m in view.meetings
    }
    return subject, build_rows(session, municipality, subject, plan, base, meetings)


# --- at send time -------------------------------------------------------------------------------


def send_time_refusal(session: Session, row: models.Notification) -> str | None:
    """Why this case or report message must not be sent now, or None to send it.

    Defence in depth: nothing goes to an external recipient of a subject that concerns
    suspected violence or abuse, however the row got here; and a message the subject's
    current state no longer calls for (the case was closed, consent withdrawn) is not sent.
    """
    if row.routine_key not in SERIES:
        return None
    municipality = session.get_one(models.Municipality, row.municipality_id)
    rules = rules_of(municipality)
    send_time = send_time_of(municipality)
    # Only the purposes are compared, so the plan is computed without resolving recipients.
    if row.routine_key == REPORT:
        report = _find(session, models.Report, row)
        if report is None:
            return "its report no longer exists"
        subject = report_subject(report)
        plan = plan_report(report_view(session, report, rules), rules, send_time)
    else:
        case = _find(session, models.Case, row)
        if case is None:
            return "its case no longer exists"
        subject = case_subject(session, case)
        manager = manager_of(rules, case.owner_role)
        plan = plan_case(case_view(session, case), rules, send_time, manager)
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
    if row.purpose not in {m.purpose for m in plan}:
        return "no longer applies: the report or case changed since it was planned"
    return None


def _find(session: Session, model: Any, row: models.Notification) -> Any:
    return session.scalar(
        select(model).where(
            model.municipality_id == row.municipality_id, model.reference == row.occurrence
        )
    )


def role_ref_problem(municipality: models.Municipality, text: str, units: set[str]) -> str | None:
    """Why `text` is not a role reference of this municipality, or None."""
    ref = RoleRef.parse(text)
    if ref.role not in MunicipalitySettings.of(municipality).role_names:
        return "unknown role (no role with that key)"
    if ref.scope is not None and ref.scope not in units and ref.scope not in set(UnitKind):
        return "unknown unit or unit kind after @"
    return None
