"""Reports of concern (orosanmälan): register, receive, flag as suspected abuse."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

import models
from core.errors import CaseInputError
from scheduler.cases import rules as rules_
from scheduler.cases.outbox import cancel_unsafe, report_plan, sync_rows
from scheduler.cases.subjects import case_subject, report_subject, report_view
from scheduler.cases.views import ReportState
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import UnitKind
from service.cases.changes import sync_case
from service.cases.inputs import check_address
from service.cases.references import allocate_reference, find_report
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


@dataclass(frozen=True)
class ReportRequest:
    unit: str
    reporter: str
    district: str
    acute: bool = False
    suspected_abuse: bool = False
    wants_feedback: bool = False
    guardians: tuple[str, ...] = ()


def register_report(desk: Desk, request: ReportRequest) -> Outcome:
    """Register a report of concern; the reporter and the district's intake unit are told."""
    desk.require(Action.REGISTER_REPORT)
    unit = desk.unit(request.unit, "--unit")
    reporter = desk.person(request.reporter, "--reporter")
    intake = _intake_unit(desk, request.district)
    guardians = tuple(
        dict.fromkeys(check_address(g, "a guardian's address") for g in request.guardians)
    )
    reference = allocate_reference(desk.session, desk.municipality_id, desk.today.year)
    report = models.Report(
        municipality_id=desk.municipality_id,
        reference=reference,
        reporting_unit_id=unit.id,
        reporter_id=reporter.id,
        district_id=intake.district_id,
        intake_unit_id=intake.id,
        **_flags(request),
        guardian_emails=list(guardians),
        state=ReportState.REGISTERED.value,
        registered_at=desk.now,
    )
    desk.session.add(report)
    desk.session.flush()
    subject, rows = report_plan(desk.session, report)
    result = sync_rows(desk.session, subject, rows, desk.now, "report changed")
    desk.audit(
        "registered",
        subject,
        unit=unit.key,
        district=request.district,
        intake=intake.key,
        **_flags(request),
        guardians_notified=len(guardians),
    )
    lines = [f"Anmälan {reference} registrerad; mottagare: {intake.name}"]
    lines += _advice(desk, request, intake)
    lines.append(f"{result.created} meddelande(n) planerade")
    return Outcome(reference, tuple(lines), result)


def _flags(request: ReportRequest) -> dict[str, bool]:
    return {
        "acute": request.acute,
        "suspected_abuse": request.suspected_abuse,
        "wants_feedback": request.wants_feedback,
    }


def _intake_unit(desk: Desk, district_key: str) -> models.Unit:
    """The intake unit (mottagningsenhet) of the child's district."""
    district = desk.session.scalar(
        select(models.District).where(
            models.District.municipality_id == desk.municipality_id,
            models.District.key == district_key,
        )
    )
    if district is None:
        raise CaseInputError("--district: no district with that key in this municipality")
    intake = desk.session.scalar(
        select(models.Unit)
        .where(
            models.Unit.municipality_id == desk.municipality_id,
            models.Unit.district_id == district.id,
            models.Unit.kind == UnitKind.MOTTAGNINGSENHET.value,
        )
        .order_by(models.Unit.key)
    )
    if intake is None:
        raise CaseInputError(f"district {district.key!r} has no intake unit (mottagningsenhet)")
    return intake


def _advice(desk: Desk, request: ReportRequest, intake: models.Unit) -> list[str]:
    """Phone first when it is urgent; when to ask for feedback."""
    lines = []
    phone = intake.phone or MunicipalitySettings.of(desk.municipality).intake_phone
    if request.acute or request.suspected_abuse:
        lines.append(
            f"BRÅDSKANDE: ring {intake.name} på {phone or 'mottagningens nummer'} innan du "
            "skriver ner anmälan."
        )
    if request.wants_feedback:
        feedback_on = rules_.after(desk.today, desk.rules.feedback_after)
        lines.append(f"Återkoppling: kontakta {intake.name} från {feedback_on}.")
    return lines


def receive_report(desk: Desk, reference: str) -> Outcome:
    """The intake unit confirms receipt; the reporter is told that, and by whom."""
    report = find_report(desk, reference)
    receiver = desk.person_acting
    desk.require(Action.RECEIVE_REPORT, report)
    view = rules_.receive_report(
        report_view(desk.session, report, desk.rules), receiver.key, desk.now
    )
    report.state = view.state.value
    report.received_at = desk.now
    report.received_by_id = receiver.id
    desk.session.flush()
    subject, rows = report_plan(desk.session, report)
    result = sync_rows(desk.session, subject, rows, desk.now, "report received")
    desk.audit("received", subject)
    return Outcome(reference, (f"Anmälan {reference} mottagen av {receiver.name}",), result)


def flag_suspected_abuse(desk: Desk, reference: str) -> Outcome:
    """The picture changed: the report concerns suspected violence or sexual abuse after all.

    From now on nothing about it, or about a case that follows it, reaches anyone who is not
    staff: the guardians' addresses recorded for the report and its cases are erased, every
    message to a non-staff recipient still to be sent is cancelled at once, and the change is
    audited. The reporter, the intake unit or an administrator may flag; nobody can unflag.
    """
    report = find_report(desk, reference)
    desk.require(Action.FLAG_ABUSE, report)
    if report.suspected_abuse:
        return Outcome(reference, (f"Anmälan {reference} är redan markerad; inget ändrades",))
    reason = "the report was flagged as suspected violence or abuse (confidentiality)"
    report.suspected_abuse = True
    erased = len(report.guardian_emails)
    report.guardian_emails = []
    desk.session.flush()
    subject, rows = report_plan(desk.session, report)
    cancelled = sync_rows(desk.session, subject, rows, desk.now, reason).cancelled
    count = len(cancelled) + cancel_unsafe(desk.session, subject, desk.now, reason)
    linked = list(
        desk.session.scalars(
            select(models.Case).where(models.Case.report_id == report.id).order_by(models.Case.id)
        )
    )
    erased += sum(len(case.externals) for case in linked)
    count += sum(_silence(desk, case, reason) for case in linked)
    desk.audit(
        "flagged_suspected_abuse",
        report_subject(report),
        cancelled=count,
        addresses_erased=erased,
        cases=[c.reference for c in linked],
    )
    return Outcome(
        reference,
        (
            f"Anmälan {reference} markerad: misstänkt våld eller sexuella övergrepp",
            f"{count} meddelande(n) till andra än personal stoppade; "
            f"{erased} vårdnadshavaradress(er) raderade",
        ),
    )


def _silence(desk: Desk, case: models.Case, reason: str) -> int:
    """A case that follows a flagged report: its external addresses erased, every message
    still to be sent to anyone who is not staff cancelled. Returns how many were cancelled."""
    case.externals = []
    count = len(sync_case(desk.session, case, desk.now, reason).cancelled)
    return count + cancel_unsafe(desk.session, case_subject(desk.session, case), desk.now, reason)
