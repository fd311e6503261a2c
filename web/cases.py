"""Reports and cases: the lists, one report, one case, and a form for everything the CLI does.

Each form calls the same service function as its command (service/cases/), at a desk for the
signed-in person (`service.case_views.desk_for`: never a typed name). What a form sends is
checked here only for its shape (a date, a time, a number, a box ticked); every rule is the
service's. A refusal answers with a Swedish message naming the field, never what was typed,
and changes nothing: the work runs in a savepoint that is rolled back on any error. Success
shows the command's own lines (the acute advice "ring mottagningsenheten först" among them).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from core.dates import parse_day
from core.errors import (
    NotFoundError,
    PermissionRefused,
    SamverkanError,
)
from service import case_views as views
from service import cases
from service.desk import Desk
from service.permissions import Action
from web import case_messages as messages
from web.access import Rule, Viewer, rule
from web.deps import Db, Refused, csrf, now, page, viewer

router = APIRouter()

Staff = Annotated[Viewer, Depends(viewer(Rule.STAFF))]
Reference = Annotated[str, Path(pattern=r"^\d{4}-\d{4,6}$", max_length=16)]
# Caps only: the checks and their messages are below and in the service.
Text = Annotated[str, Form(max_length=20_000)]
Texts = Annotated[list[str], Form(max_length=50)]
CHECKED = "ja"
NOT_FOUND = "Anmälan eller ärendet finns inte, eller så har du inte behörighet att se det."


class FormProblem(Exception):
    """A field the form sent cannot be used: its Swedish label and why."""

    def __init__(self, label: str, why: str, status: int = 400):
        super().__init__(f"{label}: {why}")
        self.message = f"{label}: {why}"
        self.status = status


# --- the lists ------------------------------------------------------------------------------


@router.get("/anmalningar")
@rule(Rule.STAFF)
def reports(request: Request, session: Db, who: Staff) -> Response:
    rows = views.reports_listed(session, who, now(request))
    return page(request, "reports.html", rows=rows)


@router.get("/arenden")
@rule(Rule.STAFF)
def case_list(request: Request, session: Db, who: Staff) -> Response:
    rows = views.cases_listed(session, who, now(request))
    return page(request, "cases.html", rows=rows)


# --- reports --------------------------------------------------------------------------------


@router.get("/anmalningar/ny")
@rule(Rule.STAFF)
def report_form(request: Request, session: Db, who: Staff) -> Response:
    return _report_form(request, session, who)


def _report_form(
    request: Request, session: Session, who: Viewer, problem: str | None = None, status: int = 200
) -> Response:
    return page(
        request,
        "reports_new.html",
        status=status,
        choices=views.choices(session, who),
        problem=problem,
    )


@router.post("/anmalningar", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def report_register(
    request: Request,
    session: Db,
    who: Staff,
    enhet: Text = "",
    distrikt: Text = "",
    akut: Text = "",
    misstankt_vald: Text = "",
    aterkoppling: Text = "",
    vardnadshavare: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        request_ = cases.ReportRequest(
            unit=_required(enhet, "Anmälande enhet"),
            reporter=who.person_key,
            district=_required(distrikt, "Barnets distrikt"),
            acute=_box(akut, "Akut"),
            suspected_abuse=_box(misstankt_vald, "Misstanke om våld eller sexuella övergrepp"),
            wants_feedback=_box(aterkoppling, "Återkoppling"),
            guardians=_lines(vardnadshavare),
        )
        return cases.register_report(desk, request_)

    return _attempt(
        request,
        session,
        who,
        work,
        lambda problem, status: _report_form(request, session, who, problem, status),
        "report",
    )


@router.get("/anmalningar/{reference}")
@rule(Rule.STAFF)
def report_show(request: Request, session: Db, who: Staff, reference: Reference) -> Response:
    return _report_page(request, session, who, reference)


def _report_page(
    request: Request,
    session: Session,
    who: Viewer,
    reference: str,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    try:
        report = views.report_page(session, who, reference, now(request))
    except views.NotVisible:
        raise Refused(404, NOT_FOUND) from None
    return page(request, "reports_show.html", status=status, report=report, problem=problem)


@router.post("/anmalningar/{reference}/mottagen", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def report_receive(request: Request, session: Db, who: Staff, reference: Reference) -> Response:
    return _on_report(
        request,
        session,
        who,
        reference,
        Action.RECEIVE_REPORT,
        lambda d: cases.receive_report(d, reference),
    )


@router.post("/anmalningar/{reference}/misstankt-vald", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def report_flag_abuse(request: Request, session: Db, who: Staff, reference: Reference) -> Response:
    return _on_report(
        request,
        session,
        who,
        reference,
        Action.FLAG_ABUSE,
        lambda d: cases.flag_suspected_abuse(d, reference),
    )


@router.post("/anmalningar/{reference}/anteckning", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def report_note(
    request: Request, session: Db, who: Staff, reference: Reference, text: Text = ""
) -> Response:
    return _on_report(
        request,
        session,
        who,
        reference,
        Action.ADD_NOTE,
        lambda d: cases.add_note(d, reference, text),
    )


def _on_report(
    request: Request,
    session: Session,
    who: Viewer,
    reference: str,
    action: Action,
    work: Callable[[Desk], cases.Outcome],
) -> Response:
    series = "report"

    def checked(desk: Desk) -> cases.Outcome:
        views.require(desk, who, action, series, reference)
        return work(desk)

    return _attempt(
        request,
        session,
        who,
        checked,
        lambda problem, status: _report_page(request, session, who, reference, problem, status),
        "report",
    )


# --- cases ----------------------------------------------------------------------------------


@router.get("/arenden/ny")
@rule(Rule.STAFF)
def case_form(request: Request, session: Db, who: Staff) -> Response:
    return _case_form(request, session, who)


def _case_form(
    request: Request, session: Session, who: Viewer, problem: str | None = None, status: int = 200
) -> Response:
    return page(
        request,
        "cases_new.html",
        status=status,
        choices=views.choices(session, who),
        problem=problem,
    )


@router.post("/arenden", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_open(
    request: Request,
    session: Db,
    who: Staff,
    processbarare: Text = "",
    roll: Text = "",
    kant_sedan: Text = "",
    skola: Text = "",
    familjebehandlare: Text = "",
    personal: Texts = [],  # noqa: B006 (FastAPI copies a form default)
    vardnadshavare: Text = "",
    elev: Text = "",
    vuxen_elev: Text = "",
    sip: Text = "",
    anmalan: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        request_ = cases.CaseRequest(
            owner=processbarare.strip() or who.person_key,
            owner_role=roll.strip() or None,
            known_on=_day(kant_sedan, "Känt sedan"),
            school=skola.strip() or None,
            family_worker=familjebehandlare.strip() or None,
            staff=tuple(k.strip() for k in personal if k.strip()),
            guardians=_lines(vardnadshavare),
            pupil=elev.strip() or None,
            adult_pupil=_box(vuxen_elev, "Eleven är 18 år eller äldre"),
            sip=_box(sip, "SIP"),
            report=anmalan.strip() or None,
        )
        try:
            if request_.report is not None:
                views.require_report_visible(desk.session, who, request_.report)
            return cases.open_case(desk, request_)
        except (NotFoundError, views.NotVisible):
            raise FormProblem("Följer anmälan", "ingen anmälan med det numret") from None

    return _attempt(
        request,
        session,
        who,
        work,
        lambda problem, status: _case_form(request, session, who, problem, status),
        "case",
    )


@router.get("/arenden/{reference}")
@rule(Rule.STAFF)
def case_show(request: Request, session: Db, who: Staff, reference: Reference) -> Response:
    return _case_page(request, session, who, reference)


def _case_page(
    request: Request,
    session: Session,
    who: Viewer,
    reference: str,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    try:
        case = views.case_page(session, who, reference, now(request))
    except views.NotVisible:
        raise Refused(404, NOT_FOUND) from None
    return page(
        request,
        "cases_show.html",
        status=status,
        case=case,
        choices=views.choices(session, who),
        problem=problem,
    )


def _on_case(
    request: Request,
    session: Session,
    who: Viewer,
    reference: str,
    action: Action,
    work: Callable[[Desk], cases.Outcome],
) -> Response:
    series = "case"

    def checked(desk: Desk) -> cases.Outcome:
        views.require(desk, who, action, series, reference)
        return work(desk)

    return _attempt(
        request,
        session,
        who,
        checked,
        lambda problem, status: _case_page(request, session, who, reference, problem, status),
        "case",
    )


@router.post("/arenden/{reference}/samtycke", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_consent(
    request: Request,
    session: Db,
    who: Staff,
    reference: Reference,
    lamnat_av: Text = "",
    omfattning: Text = "",
    lamnat_den: Text = "",
    elevens_eget: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        consent = cases.ConsentRequest(
            given_by=lamnat_av,
            scope=omfattning,
            given_on=_day(lamnat_den, "Samtycket lämnades"),
            pupil_own=_box(elevens_eget, "Elevens eget samtycke"),
        )
        return cases.record_consent(desk, reference, consent)

    return _on_case(request, session, who, reference, Action.RECORD_CONSENT, work)


@router.post("/arenden/{reference}/aterkalla-samtycke", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_withdraw_consent(
    request: Request, session: Db, who: Staff, reference: Reference
) -> Response:
    return _on_case(
        request,
        session,
        who,
        reference,
        Action.WITHDRAW_CONSENT,
        lambda d: cases.withdraw_consent(d, reference),
    )


@router.post("/arenden/{reference}/boka", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_book(
    request: Request,
    session: Db,
    who: Staff,
    reference: Reference,
    datum: Text = "",
    tid: Text = "",
    plats: Text = "",
    mote: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        on = _day(datum, "Datum", required=True)
        at = _time(tid)
        booking = cases.BookingRequest(
            on.isoformat() if on else "",
            at,
            plats.strip() or None,
            _number(mote, "Möte"),
        )
        return cases.book_meeting(desk, reference, booking)

    return _on_case(request, session, who, reference, Action.BOOK_MEETING, work)


@router.post("/arenden/{reference}/hallet", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_hold(
    request: Request,
    session: Db,
    who: Staff,
    reference: Reference,
    mote: Text = "",
    hallet_den: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        number = _number(mote, "Möte")
        day = _day(hallet_den, "Hölls den")
        return cases.hold_meeting(desk, reference, number, day)

    return _on_case(request, session, who, reference, Action.HOLD_MEETING, work)


@router.post("/arenden/{reference}/minnesanteckningar", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_minutes(
    request: Request,
    session: Db,
    who: Staff,
    reference: Reference,
    uppfoljning: Texts = [],  # noqa: B006 (FastAPI copies a form default)
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        days = [_day(v, "Uppföljningsdatum") for v in uppfoljning]
        found = [d for d in days if d is not None]
        if not found:
            raise FormProblem("Uppföljningsdatum", "ange minst ett datum")
        return cases.record_minutes(desk, reference, found)

    return _on_case(request, session, who, reference, Action.RECORD_MINUTES, work)


@router.post("/arenden/{reference}/sip", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_sip(
    request: Request, session: Db, who: Staff, reference: Reference, uppfoljning: Text = ""
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        return cases.mark_sip(desk, reference, _day(uppfoljning, "Planens uppföljning"))

    return _on_case(request, session, who, reference, Action.MARK_SIP, work)


@router.post("/arenden/{reference}/sip-insats", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_sip_item(
    request: Request,
    session: Db,
    who: Staff,
    reference: Reference,
    mal: Text = "",
    insats: Text = "",
    ansvar: Text = "",
    klart_senast: Text = "",
) -> Response:
    def work(desk: Desk) -> cases.Outcome:
        due = _day(klart_senast, "Klart senast", required=True)
        assert due is not None
        item = cases.SipItemRequest(mal, insats, _required(ansvar, "Ansvar"), due)
        return cases.add_sip_item(desk, reference, item)

    return _on_case(request, session, who, reference, Action.ADD_SIP_ITEM, work)


@router.post("/arenden/{reference}/avsluta", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_close(request: Request, session: Db, who: Staff, reference: Reference) -> Response:
    return _on_case(
        request,
        session,
        who,
        reference,
        Action.CLOSE_CASE,
        lambda d: cases.close_case(d, reference),
    )


@router.post("/arenden/{reference}/anteckning", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def case_note(
    request: Request, session: Db, who: Staff, reference: Reference, text: Text = ""
) -> Response:
    return _on_case(
        request,
        session,
        who,
        reference,
        Action.ADD_NOTE,
        lambda d: cases.add_note(d, reference, text),
    )


# --- running a form's work ------------------------------------------------------------------


def _attempt(
    request: Request,
    session: Session,
    who: Viewer,
    work: Callable[[Desk], cases.Outcome],
    again: Callable[[str, int], Response],
    series: str,
) -> Response:
    """Run `work` at the signed-in person's desk in a savepoint: on success, the outcome's
    lines; on a refusal, nothing changed and `again` shows the form with the reason."""
    desk = views.desk_for(session, who, now(request))
    try:
        with session.begin_nested():
            outcome = work(desk)
    except FormProblem as problem:
        return again(problem.message, problem.status)
    except PermissionRefused as exc:
        raise Refused(403, messages.refusal(str(exc))) from None
    except (NotFoundError, views.NotVisible):
        raise Refused(404, NOT_FOUND) from None
    except SamverkanError as exc:
        return again(messages.swedish(exc), 400)
    return page(
        request,
        "cases_outcome.html",
        outcome=outcome,
        href=f"/{'anmalningar' if series == 'report' else 'arenden'}/{outcome.reference}",
        series=series,
    )


# --- the shape of what a form sent ----------------------------------------------------------


def _required(value: str, label: str) -> str:
    if not value.strip():
        raise FormProblem(label, "måste fyllas i")
    return value.strip()


def _box(value: str, label: str) -> bool:
    if value not in ("", CHECKED):
        raise FormProblem(label, "kryssrutan skickade ett okänt värde")
    return value == CHECKED


def _day(value: str, label: str, *, required: bool = False) -> dt.date | None:
    if not value.strip():
        if required:
            raise FormProblem(label, "måste fyllas i (ÅÅÅÅ-MM-DD)")
        return None
    found = parse_day(value)
    if found is None:
        raise FormProblem(label, "skriv ett datum som ÅÅÅÅ-MM-DD")
    return found


def _time(value: str) -> str:
    if not re.fullmatch(r"\d{1,2}[:.]\d{2}", value.strip()):
        raise FormProblem("Tid", "skriv en tid som TT:MM")
    hours, minutes = re.split(r"[:.]", value.strip())
    if int(hours) > 23 or int(minutes) > 59:
        raise FormProblem("Tid", "skriv en tid som TT:MM")
    return f"{int(hours):02d}:{minutes}"


def _number(value: str, label: str) -> int | None:
    if not value.strip():
        return None
    if not re.fullmatch(r"\d{1,3}", value.strip()) or int(value) < 1:
        raise FormProblem(label, "ange ett mötesnummer (1, 2, …)")
    return int(value)


def _lines(value: str) -> tuple[str, ...]:
    """One address a line (or separated by commas); empty lines are skipped."""
    return tuple(part.strip() for part in re.split(r"[\n,;]", value) if part.strip())
