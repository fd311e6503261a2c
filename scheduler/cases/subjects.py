"""Reports and cases read from their rows: the views the pure rules take, the subject the
outbox guards, and the municipality's case settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

import models
from scheduler.cases.views import (
    CASE,
    REPORT,
    CaseState,
    CaseView,
    External,
    MeetingState,
    MeetingView,
    ReportState,
    ReportView,
    SipItemView,
)
from scheduler.confidential import StaffRule
from scheduler.identity import sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import CaseRules, RoleRef, UnitKind

SERIES = (REPORT, CASE)
LABELS = {REPORT: "Anmälan", CASE: "Ärende"}


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


def role_ref_problem(municipality: models.Municipality, text: str, units: set[str]) -> str | None:
    """Why `text` is not a role reference of this municipality, or None."""
    ref = RoleRef.parse(text)
    if ref.role not in MunicipalitySettings.of(municipality).role_names:
        return "unknown role (no role with that key)"
    if ref.scope is not None and ref.scope not in units and ref.scope not in set(UnitKind):
        return "unknown unit or unit kind after @"
    return None


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


def report_subject(report: models.Report) -> Subject:
    return Subject(report.municipality_id, REPORT, report.reference, report.suspected_abuse)


def case_subject(session: Session, case: models.Case) -> Subject:
    report = session.get(models.Report, case.report_id) if case.report_id else None
    return Subject(
        case.municipality_id, CASE, case.reference, bool(report and report.suspected_abuse)
    )
