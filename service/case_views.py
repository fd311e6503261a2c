"""Read models of the web's case and report pages: lists, one report, one case, the forms'
choices, and the desk a form acts at.

Every query starts from the `Viewer` (service/viewer.py): only the viewer's municipality, and
only the reports and cases the viewer may see (`service.todo_view.case_visible` and
`report_visible`: coordinators see all of their municipality). Every listing of a report or
case is audited (`case_audit`, action `web.listed`), every view of one `web.viewed`. What a
page may show is what `samverkan case show` shows; notes only to those the desk lets read them
(`Action.READ_NOTES`, as `case show --notes`). Guardians and pupils are counted, never named
or addressed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import deadlines
from scheduler.cases.subjects import case_view, rules_of
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import SCHOOL_KINDS, CaseRules, UnitKind
from service.delivery_log import STATUS_TEXT
from service.desk import Desk
from service.permissions import Action
from service.todo_view import case_visible, report_visible, visible_cases
from service.viewer import Viewer

REPORT_STATES = {"registered": "Registrerad, mottagandet inte bekräftat", "received": "Mottagen"}
CASE_STATES = {
    "open": "Öppnat, samtycke saknas",
    "active": "Pågår (samtycke finns)",
    "withdrawn": "Samtycket återkallat",
    "closed": "Avslutat",
}
MEETING_STATES = {"booked": "Bokat", "held": "Hållet", "cancelled": "Inställt"}


class NotVisible(Exception):
    """No such report or case in the viewer's municipality, or the viewer may not see it."""


@dataclass(frozen=True)
class ReportRow:
    reference: str
    registered_on: dt.date
    state: str
    state_text: str
    unit: str
    intake: str
    reporter: str
    acute: bool
    suspected_abuse: bool


@dataclass(frozen=True)
class CaseRow:
    reference: str
    state: str
    state_text: str
    owner: str
    school: str | None
    known_on: dt.date
    next_deadline: dt.date | None
    late: bool
    sip: bool


@dataclass(frozen=True)
class Note:
    at: dt.datetime
    author: str
    text: str


@dataclass(frozen=True)
class Message:
    purpose: str
    status: str
    due: dt.datetime


@dataclass(frozen=True)
class ReportPage:
    row: ReportRow
    wants_feedback: bool
    guardians: int
    received_at: dt.datetime | None
    received_by: str | None
    intake_phone: str | None
    messages: list[Message]
    notes: list[Note] | None  # None: the viewer may not read them
    may: frozenset[str]  # the actions (service.permissions.Action values) the viewer may do


@dataclass(frozen=True)
class Deadline:
    meeting: int
    last_day: dt.date
    met: bool
    late: bool


@dataclass(frozen=True)
class Meeting:
    number: int
    state: str
    state_text: str
    start: dt.datetime
    place: str | None
    held_on: dt.date | None


@dataclass(frozen=True)
class SipItem:
    number: int
    goal: str | None  # staff-only free text: None unless the viewer may read notes
    action: str | None
    responsible: str
    due_on: dt.date


@dataclass(frozen=True)
class CasePage:
    row: CaseRow
    owner_role: str
    family_worker: str | None
    staff: list[str]
    guardians: int
    pupil: bool
    adult_pupil: bool
    report: str | None
    consent_given_on: dt.date | None
    deadlines: list[Deadline]
    meetings: list[Meeting]
    follow_ups: list[dt.date]
    sip_follow_up: dt.date | None
    sip_items: list[SipItem]
    messages: list[Message]
    notes: list[Note] | None
    may: frozenset[str]


@dataclass(frozen=True)
class Choice:
    key: str
    text: str


@dataclass(frozen=True)
class Choices:
    """What the forms offer: everything chosen by key from the viewer's municipality."""

    units: list[Choice]  # a reporting unit: any unit but an intake unit
    districts: list[Choice]
    intake_phones: list[Choice]  # intake unit name -> phone ("ring först")
    people: list[Choice]
    schools: list[Choice]
    owner_roles: list[Choice]
    places: list[Choice]
    reports: list[Choice]  # reports the viewer may see, to open a case from


def desk_for(session: Session, viewer: Viewer, now: dt.datetime) -> Desk:
    """The desk for the signed-in person: they are the one acting, never a typed name."""
    return Desk.open(session, viewer.municipality_id, viewer.person_key, now)


# --- lists ----------------------------------------------------------------------------------


def reports_listed(session: Session, viewer: Viewer, now: dt.datetime) -> list[ReportRow]:
    """The reports the viewer may see, newest first; each listing audited."""
    intake_role = _rules(session, viewer).intake_role
    r = models.Report
    query = select(r).where(r.municipality_id == viewer.municipality_id)
    rows = []
    for report in session.scalars(query.order_by(r.registered_at.desc(), r.id.desc())):
        if not report_visible(viewer, report, intake_role):
            continue
        rows.append(_report_row(session, report))
        _audit(session, viewer, "report", report.reference, now, "web.listed", "anmalningar")
    return rows


def cases_listed(session: Session, viewer: Viewer, now: dt.datetime) -> list[CaseRow]:
    """The cases the viewer may see (coordinators: all), by reference; each listing audited."""
    rules = _rules(session, viewer)
    rows = []
    for case in reversed(visible_cases(session, viewer)):
        rows.append(_case_row(session, case, rules, local_date(now)))
        _audit(session, viewer, "case", case.reference, now, "web.listed", "arenden")
    return rows


def _report_row(session: Session, report: models.Report) -> ReportRow:
    return ReportRow(
        reference=report.reference,
        registered_on=report.registered_at.astimezone(STOCKHOLM).date(),
        state=report.state,
        state_text=REPORT_STATES.get(report.state, report.state),
        unit=session.get_one(models.Unit, report.reporting_unit_id).name,
        intake=session.get_one(models.Unit, report.intake_unit_id).name,
        reporter=session.get_one(models.Person, report.reporter_id).name,
        acute=report.acute,
        suspected_abuse=report.suspected_abuse,
    )


def _case_row(session: Session, case: models.Case, rules: CaseRules, today: dt.date) -> CaseRow:
    open_deadlines = [d for d in deadlines(case_view(session, case), rules) if not d.met]
    following = min((d.last_day for d in open_deadlines), default=None)
    school = session.get(models.Unit, case.school_unit_id) if case.school_unit_id else None
    return CaseRow(
        reference=case.reference,
        state=case.state,
        state_text=CASE_STATES.get(case.state, case.state),
        owner=session.get_one(models.Person, case.owner_id).name,
        school=school.name if school else None,
        known_on=case.known_on,
        next_deadline=following if case.state != "closed" else None,
        late=following is not None and following < today and case.state != "closed",
        sip=case.sip,
    )


# --- one report, one case -------------------------------------------------------------------


def report_page(session: Session, viewer: Viewer, reference: str, now: dt.datetime) -> ReportPage:
    """One report, for those who may see it (NotVisible otherwise); the view is audited."""
    report = session.scalar(
        select(models.Report).where(
            models.Report.municipality_id == viewer.municipality_id,
            models.Report.reference == reference,
        )
    )
    if report is None or not report_visible(viewer, report, _rules(session, viewer).intake_role):
        raise NotVisible()
    desk = desk_for(session, viewer, now)
    may = _may(desk, report, (Action.RECEIVE_REPORT, Action.FLAG_ABUSE, Action.ADD_NOTE))
    intake = session.get_one(models.Unit, report.intake_unit_id)
    receiver = session.get(models.Person, report.received_by_id) if report.received_by_id else None
    _audit(session, viewer, "report", reference, now, "web.viewed", "anmalan")
    return ReportPage(
        row=_report_row(session, report),
        wants_feedback=report.wants_feedback,
        guardians=len(report.guardian_emails),
        received_at=report.received_at,
        received_by=receiver.name if receiver else None,
        intake_phone=intake.phone or MunicipalitySettings.of(desk.municipality).intake_phone,
        messages=_messages(session, viewer, "report", reference),
        notes=_notes(session, viewer, reference) if desk.may(Action.READ_NOTES, report) else None,
        may=may,
    )


def case_page(session: Session, viewer: Viewer, reference: str, now: dt.datetime) -> CasePage:
    """One case, for those who may see it (NotVisible otherwise); the view is audited."""
    case = session.scalar(
        select(models.Case).where(
            models.Case.municipality_id == viewer.municipality_id,
            models.Case.reference == reference,
        )
    )
    if case is None or not case_visible(viewer, case):
        raise NotVisible()
    desk = desk_for(session, viewer, now)
    today = local_date(now)
    rules = desk.rules
    view = case_view(session, case)
    may = _may(
        desk,
        case,
        (
            Action.RECORD_CONSENT,
            Action.WITHDRAW_CONSENT,
            Action.BOOK_MEETING,
            Action.HOLD_MEETING,
            Action.RECORD_MINUTES,
            Action.MARK_SIP,
            Action.ADD_SIP_ITEM,
            Action.CLOSE_CASE,
            Action.ADD_NOTE,
        ),
    )
    reads_notes = desk.may(Action.READ_NOTES, case)
    places = MunicipalitySettings.of(desk.municipality).places
    worker = session.get(models.Person, case.family_worker_id) if case.family_worker_id else None
    report = session.get(models.Report, case.report_id) if case.report_id else None
    _audit(session, viewer, "case", reference, now, "web.viewed", "arende")
    return CasePage(
        row=_case_row(session, case, rules, today),
        owner_role=case.owner_role,
        family_worker=worker.name if worker else None,
        staff=[_person_name(session, viewer, key) for key in case.staff],
        guardians=sum(1 for e in case.externals if e.get("kind") == "guardian"),
        pupil=any(e.get("kind") == "pupil" for e in case.externals),
        adult_pupil=case.adult_pupil,
        report=report.reference if report else None,
        consent_given_on=case.consent_given_on if case.state == "active" else None,
        deadlines=[
            Deadline(d.meeting, d.last_day, d.met, not d.met and d.last_day < today)
            for d in deadlines(view, rules)
        ],
        meetings=[
            Meeting(
                number=m.number,
                state=m.state.value,
                state_text=MEETING_STATES.get(m.state.value, m.state.value),
                start=m.start.astimezone(STOCKHOLM),
                place=_place_name(places, m.location),
                held_on=m.held_on,
            )
            for m in view.meetings
        ],
        follow_ups=list(view.follow_ups),
        sip_follow_up=view.sip_follow_up,
        sip_items=[
            SipItem(
                i.number,
                i.goal if reads_notes else None,
                i.action if reads_notes else None,
                i.responsible,
                i.due_on,
            )
            for i in sorted(case.sip_items, key=lambda i: i.number)
        ],
        messages=_messages(session, viewer, "case", reference),
        notes=_notes(session, viewer, reference) if reads_notes else None,
        may=may,
    )


def _may(
    desk: Desk, matter: models.Report | models.Case, actions: tuple[Action, ...]
) -> frozenset[str]:
    return frozenset(a.value for a in actions if desk.may(a, matter))


def _place_name(places: object, key: str | None) -> str | None:
    if key is None:
        return None
    place = places.get(key) if isinstance(places, dict) else None
    return str(place.get("name") or key) if isinstance(place, dict) else None


def _person_name(session: Session, viewer: Viewer, key: str) -> str:
    person = session.scalar(
        select(models.Person).where(
            models.Person.municipality_id == viewer.municipality_id, models.Person.key == key
        )
    )
    return person.name if person else key


def _messages(session: Session, viewer: Viewer, series: str, reference: str) -> list[Message]:
    n = models.Notification
    found = session.execute(
        select(n.purpose, n.status, n.due_at)
        .where(
            n.municipality_id == viewer.municipality_id,
            n.routine_key == series,
            n.occurrence == reference,
        )
        .order_by(n.due_at, n.id)
    )
    return [Message(p, _status_text(str(s)), d.astimezone(STOCKHOLM)) for p, s, d in found]


def _status_text(status: str) -> str:
    """In the delivery log's words: Planerad, Skickas, Skickad, Misslyckad, Stoppad."""
    state = {"pending": "planned", "queued": "sending"}.get(status, status)
    return STATUS_TEXT.get(state, status)


def _notes(session: Session, viewer: Viewer, reference: str) -> list[Note]:
    found = session.execute(
        select(models.CaseNote, models.Person.name)
        .join(models.Person, models.Person.id == models.CaseNote.author_id)
        .where(
            models.CaseNote.municipality_id == viewer.municipality_id,
            models.CaseNote.reference == reference,
        )
        .order_by(models.CaseNote.id)
    )
    return [Note(note.at.astimezone(STOCKHOLM), name, note.text) for note, name in found]


# --- what the forms offer -------------------------------------------------------------------


def choices(session: Session, viewer: Viewer) -> Choices:
    """The units, districts, people, places and roles of the viewer's municipality."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    settings = MunicipalitySettings.of(municipality)
    units = list(
        session.scalars(
            select(models.Unit)
            .where(models.Unit.municipality_id == viewer.municipality_id)
            .order_by(models.Unit.name)
        )
    )
    districts = session.scalars(
        select(models.District)
        .where(models.District.municipality_id == viewer.municipality_id)
        .order_by(models.District.name)
    )
    people = session.scalars(
        select(models.Person)
        .where(models.Person.municipality_id == viewer.municipality_id, models.Person.active)
        .order_by(models.Person.name)
    )
    intake = UnitKind.MOTTAGNINGSENHET.value
    schools = {k.value for k in SCHOOL_KINDS}
    r = models.Report
    reports = session.scalars(
        select(r).where(r.municipality_id == viewer.municipality_id).order_by(r.reference)
    )
    rules = settings.cases
    return Choices(
        units=[Choice(u.key, u.name) for u in units if u.kind != intake],
        districts=[Choice(d.key, d.name) for d in districts],
        intake_phones=[
            Choice(u.name, u.phone or settings.intake_phone or "")
            for u in units
            if u.kind == intake
        ],
        people=[Choice(p.key, p.name) for p in people],
        schools=[Choice(u.key, u.name) for u in units if u.kind in schools],
        owner_roles=[Choice(k, settings.role_names.get(k, k)) for k in rules.owner_roles],
        places=[
            Choice(key, str(place.get("name") or key) if isinstance(place, dict) else key)
            for key, place in sorted(settings.places.items())
        ],
        reports=[
            Choice(rep.reference, f"Anmälan {rep.reference}")
            for rep in reports
            if report_visible(viewer, rep, rules.intake_role)
        ],
    )


def _rules(session: Session, viewer: Viewer) -> CaseRules:
    return rules_of(session.get_one(models.Municipality, viewer.municipality_id))


def _audit(
    session: Session,
    viewer: Viewer,
    series: str,
    reference: str,
    now: dt.datetime,
    action: str,
    page: str,
) -> None:
    session.add(
        models.CaseAudit(
            municipality_id=viewer.municipality_id,
            series=series,
            reference=reference,
            at=now,
            actor_id=viewer.person_id,
            actor=viewer.person_key,
            action=action,
            detail={"page": page},
        )
    )


def require(desk: Desk, viewer: Viewer, action: Action, series: str, reference: str) -> None:
    """Before anything a form sent is read: NotVisible when the viewer may not see the report
    or case (nobody acts on what their pages do not show them), PermissionRefused when the
    desk's rules do not let them do `action` on it. A refusal never depends on the input."""
    from service.cases.references import find_case, find_report

    matter = (find_case if series == "case" else find_report)(desk, reference)
    if isinstance(matter, models.Case):
        visible = case_visible(viewer, matter)
    else:
        visible = report_visible(viewer, matter, desk.rules.intake_role)
    if not visible:
        raise NotVisible()
    desk.require(action, matter)


def require_report_visible(session: Session, viewer: Viewer, reference: str) -> None:
    """A case opened on the web follows only a report its opener may see (NotVisible if not)."""
    report = session.scalar(
        select(models.Report).where(
            models.Report.municipality_id == viewer.municipality_id,
            models.Report.reference == reference,
        )
    )
    if report is None or not report_visible(viewer, report, _rules(session, viewer).intake_role):
        raise NotVisible()
